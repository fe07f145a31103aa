import os
import threading

from st2reactor.sensor.base import Sensor


class FileWatchSensor(Sensor):
    """Tails one file per examples.file_watch.line trigger.

    Create a trigger with parameters {"file_path": "/tmp/watched.log"}; every
    line appended to that file then becomes a trigger instance of that
    trigger ({"file_path": ..., "line": ...}). Lines already in the file when
    the watch starts are not sent. A truncated or replaced file is read again
    from its start.
    """

    POLL_SECONDS = 1.0

    def __init__(self, sensor_service, config=None):
        super(FileWatchSensor, self).__init__(sensor_service=sensor_service, config=config)
        self._logger = self.sensor_service.get_logger(name=self.__class__.__name__)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._tailers = {}  # trigger id -> _Tailer

    def setup(self):
        pass

    def run(self):
        # The tailer threads do the work; wait until cleanup().
        while not self._stop.wait(3600):
            pass

    def cleanup(self):
        self._stop.set()
        with self._lock:
            tailers = list(self._tailers.values())
            self._tailers.clear()
        for tailer in tailers:
            tailer.stop()

    def add_trigger(self, trigger):
        file_path = (trigger.get("parameters") or {}).get("file_path")
        if not file_path:
            self._logger.error('Trigger %s has no "file_path" parameter; ignored',
                               trigger.get("ref"))
            return
        self._start(trigger, file_path)

    def update_trigger(self, trigger):
        self.remove_trigger(trigger)
        self.add_trigger(trigger)

    def remove_trigger(self, trigger):
        with self._lock:
            tailer = self._tailers.pop(trigger["id"], None)
        if tailer:
            tailer.stop()
            self._logger.info('Stopped watching "%s" for %s', tailer.file_path, tailer.ref)

    def _start(self, trigger, file_path):
        tailer = _Tailer(file_path, trigger["ref"], self._dispatch_line, self._logger,
                         self.POLL_SECONDS)
        with self._lock:
            old = self._tailers.pop(trigger["id"], None)
            self._tailers[trigger["id"]] = tailer
        if old:
            old.stop()
        tailer.start()
        self._logger.info('Watching "%s" for %s', file_path, trigger["ref"])

    def _dispatch_line(self, trigger_ref, file_path, line):
        self.sensor_service.dispatch(trigger=trigger_ref,
                                     payload={"file_path": file_path, "line": line})


class _Tailer(object):
    def __init__(self, file_path, ref, on_line, logger, poll_seconds):
        self.file_path = file_path
        self.ref = ref
        self._on_line = on_line
        self._logger = logger
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tail:" + file_path)
        self._thread.daemon = True

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()

    def _loop(self):
        f = None
        inode = None
        partial = b""
        missing_logged = False
        try:
            while not self._stop.is_set():
                if f is None:
                    try:
                        f = open(self.file_path, "rb")
                    except OSError:
                        inode = -1  # created later: all of its lines are new
                        if not missing_logged:
                            self._logger.warning('"%s" does not exist (yet)', self.file_path)
                            missing_logged = True
                        self._stop.wait(self._poll)
                        continue
                    st = os.fstat(f.fileno())
                    if inode is None:
                        f.seek(0, os.SEEK_END)  # first open: only new lines
                    inode = st.st_ino
                    partial = b""
                data = f.read()
                if data:
                    lines = (partial + data).split(b"\n")
                    partial = lines.pop()
                    for raw in lines:
                        self._on_line(self.ref, self.file_path,
                                      raw.rstrip(b"\r").decode("utf-8", "replace"))
                    continue
                # Nothing new: replaced or truncated?
                try:
                    st = os.stat(self.file_path)
                    if st.st_ino != inode or st.st_size < f.tell():
                        f.close()
                        f = None
                        inode = -1  # not the first open: read the new file from its start
                        continue
                except OSError:
                    pass
                self._stop.wait(self._poll)
        except Exception:
            self._logger.exception('Watching "%s" failed', self.file_path)
        finally:
            if f is not None:
                f.close()
