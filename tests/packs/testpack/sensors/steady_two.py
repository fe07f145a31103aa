from steady_base import Steady


class SteadyTwo(Steady):
    pass
