"""Names of the files in a run folder, shared by the service and the worker."""

RESULTS = "results"  # complete artefacts; appears only by an atomic rename of PARTIAL
PARTIAL = "results.partial"
ERROR_FILE = "error.json"
PROGRESS_FILE = "progress.json"
WORKER_LOG = "worker.log"
CONTROL_FILE = "control.json"  # pause/resume/cancel requests for a supervisor on another machine
RESOURCES_FILE = "resources.json"  # CPU and memory a remote supervisor reports

# Exit code of a worker that ran out of disk space, so the scheduler can say so even when no
# error.json could be written.
EXIT_DISK_FULL = 28
DISK_FULL_MESSAGE = ("The disk of the state folder is full: the results could not be written and "
                     "were removed. Free some space and run the backtest again.")
