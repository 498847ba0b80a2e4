"""The training job kind: a run is sent to its template's queue (gpu for images, cpu for tables)
and trained by apps.training.execution on the worker that claims it."""

from apps.core.errors import ServiceError
from apps.core.job_registry import JobKind, register

TRAIN = register(
    JobKind(
        name="training_run.execute",
        model="training.TrainingRun",
        # the name queued messages carry since the first release; keep it
        task="workers.tasks.training.training_run_execute_task",
        work="apps.training.execution.train_work",
        what="Training",
        queue="gpu",
        queue_field="queue",
        # The trainers refuse bad input (an empty split, an unreadable image) with ValueError.
        expected=(ServiceError, ValueError),
    )
)
