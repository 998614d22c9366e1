"""Waiting for the work a framework has queued but not yet done, where it dispatches asynchronously.

Keras 3 on JAX dispatches training steps and returns before the device has run them (on a CPU too), so the end of
an epoch's last training call is not the end of its training: the validation pass would start its clock while
the training steps still run, and `val_s` would hold them. The timer waits here before it reads the validation
clock: the epoch's wall time is the same (the validation pass had to wait for those steps anyway), and the split
between training and validation is where the work is. PyTorch on a GPU is asynchronous the same way; TensorFlow's
calls and PyTorch on a CPU return when their work is done, so they need no wait.
"""


from models import frameworks


def queued_work_waiter(framework, on_gpu):
    """A callable (model -> None) that returns once the model's queued updates are done, or None if none queue
    (each framework's `queued_waiter`, models/frameworks/)."""
    return frameworks.call(framework, "queued_waiter", on_gpu)
