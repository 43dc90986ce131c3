"""Names of the files in a run folder, shared by the service and the worker."""

RESULTS = "results"  # complete artefacts; appears only by an atomic rename of PARTIAL
PARTIAL = "results.partial"
ERROR_FILE = "error.json"
PROGRESS_FILE = "progress.json"
WORKER_LOG = "worker.log"
