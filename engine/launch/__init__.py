"""The launch room: what starts, owns and stops a run's processes.

    request.py    the new-run form, resolved into a RunConfig (the review screen's facts beside it)
    checks.py     the launch checks on this machine (device, data), and the device defaults
    plan.py       LaunchPlan and the one parser of --gpus / --nproc-per-node / GPUs fields
    backends.py   the launch backends (a local process, torchrun, a Slurm job)
    runs.py       the use cases: new run, resume, stop (request / force), delete, and start_run
    outcome.py    what a use case returns (Outcome) or raises (LaunchError, one line)
    liveness.py   who is alive (runs, sweeps, evaluator jobs) and the reaping of the dead ones
    lock.py       the OS file lock that owns a run or a sweep, and process identity (pid and start time)
    signals.py    stop signals that are never lost, from the engine's first line; Slurm's requeue signals
    slurm/        the Slurm backend: options and profiles, sbatch/squeue/... calls, job states, submission, the
                  job wrapper (slurm-task), the checks before a submission
"""
