"""The Slurm launch backend (issue 17): runs and sweeps submitted with sbatch, watched from the login node, surviving
preemption. Engines on the nodes run in spool mode (they never open runs.db; engine/store/spool.py).

    options.py    SlurmOptions, typed and validated once, and the sbatch options they become (one argv element each)
    profiles.py   the user's named profiles, $XDG_CONFIG_HOME/difftui/slurm.yaml
    client.py     the one place sbatch, squeue, sacct, sinfo, scontrol and scancel are called, and their answers read
    jobs.py       what Slurm says about the jobs: one rate-limited squeue per poll, the states, the words shown
    submit.py     the job's files (task file, batch script) and sbatch: a run as a job, members as a job array
    task.py       the job wrapper (`python -m difftui.engine slurm-task`): srun the engines, requeue on a crash
    checks.py     what must hold before a submission (sbatch, partition, GPUs, time limit, a shared runs folder)

Which Slurm run is alive is decided in difftui.engine.launch.liveness, with the local rules.
"""
