from steady_base import Steady


class SteadyOne(Steady):
    pass
