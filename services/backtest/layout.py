"""Names of the files in a run folder, shared by the service and the worker."""

RESULTS = "results"  # complete artefacts; appears only by an atomic rename of PARTIAL
PARTIAL = "results.partial"
ERROR_FILE = "error.json"
PROGRESS_FILE = "progress.json"
WORKER_LOG = "worker.log"
CONTROL_FILE = "control.json"  # pause/resume/cancel requests for a supervisor on another machine
RESOURCES_FILE = "resources.json"  # CPU and memory a remote supervisor reports
