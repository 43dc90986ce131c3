"""Names of the files in a run folder, shared by the service and the worker."""

RESULTS = "results"  # complete artefacts; appears only by an atomic rename of PARTIAL
PARTIAL = "results.partial"
ERROR_FILE = "error.json"
PROGRESS_FILE = "progress.json"
WORKER_LOG = "worker.log"
CONTROL_FILE = "control.json"  # pause/resume/cancel requests for a supervisor on another machine
RESOURCES_FILE = "resources.json"  # CPU and memory a remote supervisor reports
# In RESULTS: the run's daily returns (statistics.daily_returns of its equity), column
# RETURN_COLUMN indexed by DAY_COLUMN (UTC). Runs made before it existed have none.
DAILY_RETURNS = "daily_returns.parquet"
DAY_COLUMN, RETURN_COLUMN = "day", "return"

# Exit code of a worker that ran out of disk space, so the scheduler can say so even when no
# error.json could be written.
EXIT_DISK_FULL = 28
DISK_FULL_MESSAGE = ("The disk of the state folder is full: the results could not be written and "
                     "were removed. Free some space and run the backtest again.")
