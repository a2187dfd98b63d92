"""The multi-host setup of docs/offload.md on "machines" that are network namespaces.

Five hosts on a private bridge (addresses the test picks; nothing else is reachable): the
Dask scheduler, `medview serve --dask`, two `dask worker`s and a workstation. The workers
cannot see the server's job folder (a tmpfs hides it in their mount namespace) and each has
its own temporary folder, as on separate machines, so inputs and results travel between
machines in chunks. The workstation runs the documented commands (`medview remote add`,
`medview run … --batch --remote`, `--split`) and gets the local run's voxels. Needs root
and iproute2: with CI=true it fails, never skips, when it cannot create the namespaces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from netns import Hosts, can_create, wait_for
from offload_procs import free_port, medview_cmd, subprocess_env
from realparts import require

from medview.core.volume import Volume
from medview.formats.volume_io import read_volume, write_volume
from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.netns]

CHAIN = {"steps": [{"step": "smooth.gaussian", "params": {"sigma_mm": 1.5}},
                   {"step": "features.sobel"},
                   {"step": "segment.threshold", "params": {"low": 30.0, "high": 1e6}}]}


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    missing = can_create()
    require(missing is None, f"{missing} to create network namespaces")
    root = tmp_path_factory.mktemp("multihost")
    h = Hosts(["scheduler", "server", "worker1", "worker2", "workstation"])
    try:
        yield root, h
    finally:
        h.close()


def _dask(*args) -> list[str]:
    return [str(Path(sys.executable).with_name("dask")), *map(str, args)]


@pytest.fixture(scope="module")
def site(hosts):
    """The scheduler (noticing a vanished worker after 5 s), the server, two workers, and the
    workstation with the endpoint `site` configured and both workers connected."""
    root, h = hosts
    env = subprocess_env(root / "config", root / "data")
    a = h.address
    # the server's machine: certificate for its address, a token, its state folder
    server_dir = root / "server-machine"
    server_dir.mkdir()
    run = h.run("server", medview_cmd("serve", "make-cert", server_dir / "tls", "--host",
                                      a["server"]), env=env)
    assert run.returncode == 0, run.stderr
    run = h.run("server", medview_cmd("serve", "add-token", "workstation-1", "--tokens",
                                      server_dir / "tokens.json"), env=env)
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()

    sched_port, server_port = free_port(), free_port()
    scheduler = f"tcp://{a['scheduler']}:{sched_port}"
    h.popen("scheduler", _dask("scheduler", "--host", a["scheduler"], "--port", sched_port,
                               "--dashboard-address", f"{a['scheduler']}:0"),
            log=root / "scheduler.log",
            env={**env, "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "5s"})
    h.wait_port("server", a["scheduler"], sched_port, env=env)
    for name in ("worker1", "worker2"):
        tmp = root / f"{name}-tmp"
        tmp.mkdir()
        h.popen(name, _dask("worker", scheduler, "--host", a[name], "--nthreads", "1",
                            "--no-nanny", "--dashboard-address", f"{a[name]}:0"),
                log=root / f"{name}.log", hide=server_dir,
                env={**env, "TMPDIR": str(tmp), "MEDVIEW_THREADS": "1"})
    h.popen("server", medview_cmd("serve", "--host", a["server"], "--port", server_port,
                                  "--cert", server_dir / "tls" / "cert.pem",
                                  "--key", server_dir / "tls" / "key.pem",
                                  "--tokens", server_dir / "tokens.json",
                                  "--state-dir", server_dir / "state", "--dask", scheduler),
            log=root / "server.log", env=env)
    h.wait_port("workstation", a["server"], server_port, env=env)

    # the workstation: an endpoint, then a batch of two series and one volume split in two
    ws = root / "workstation"
    ws.mkdir()
    url = f"https://{a['server']}:{server_port}"
    run = h.run("workstation", medview_cmd("remote", "add", "site", url, "--ca-bundle",
                                           server_dir / "tls" / "cert.pem"),
                env=env, input=token + "\n")
    assert run.returncode == 0, run.stderr
    check = ("import sys, time\n"
             "from medview.remote.client import RemoteClient\n"
             "end = time.monotonic() + 60\n"
             "with RemoteClient.for_endpoint('site') as c:\n"
             "    while (c.info().slots or 0) < 2 and time.monotonic() < end:\n"
             "        time.sleep(0.2)\n"
             "    print(c.info().slots, c.info().executor)\n")
    run = h.run("workstation", [sys.executable, "-c", check], env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    slots, executor = run.stdout.split(maxsplit=1)
    assert slots == "2" and executor.strip() == f"dask {scheduler}", run.stdout

    return {"root": root, "hosts": h, "env": env, "ws": ws, "server_dir": server_dir,
            "scheduler": scheduler}


def test_scheduler_server_workers_and_workstation_on_separate_hosts(site):
    root, h, env, ws, server_dir = (site[k] for k in ("root", "hosts", "env", "ws",
                                                      "server_dir"))
    a = h.address
    rng = np.random.default_rng(11)
    inputs = []
    for i in range(3):
        vol = Volume(rng.normal(0, 100, (24, 64, 64)).astype(np.float32), (0.8, 0.8, 1.5),
                     (0.0, 0.0, 10.0 * i))
        path = ws / f"s{i}.nii.gz"
        write_volume(vol, path)
        inputs.append(path)
    chain_file = ws / "chain.json"
    chain_file.write_text(json.dumps(CHAIN))
    run = h.run("workstation", medview_cmd("run", chain_file, *inputs, "-o", ws / "out",
                                           "--batch", "--remote", "site"), env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 written, 0 skipped, 0 failed" in run.stdout
    run = h.run("workstation", medview_cmd("run", chain_file, inputs[0], "-o", ws / "split",
                                           "--remote", "site", "--split"), env=env)
    assert run.returncode == 0, run.stdout + run.stderr

    chain = Chain.from_dict(CHAIN)
    for path in inputs:
        local = run_chain(chain, {"image": read_volume(path)})
        name = path.name.removesuffix(".nii.gz")
        for step in ("step1", "step2"):
            got = read_volume(ws / "out" / name / f"{step}.nii.gz").array
            assert np.array_equal(got, local.values[step].array), (name, step)
    local = run_chain(chain, {"image": read_volume(inputs[0])})
    assert np.array_equal(read_volume(ws / "split" / "step2.nii.gz").array,
                          local.values["step2"].array)
    # the jobs really crossed machines: both workers ran some, none saw the job folder, and
    # the server fetched every result from a worker's own spool
    log = (root / "server.log").read_text()
    assert log.count("fetched ") >= 4, log[-3000:]
    ran_on = {a["worker1"], a["worker2"]} & {line.split(" from tcp://")[1].split(":")[0]
                                             for line in log.splitlines()
                                             if "fetched " in line and " from tcp://" in line}
    assert ran_on == {a["worker1"], a["worker2"]}, log[-3000:]
    # nothing stays behind on the server once the results are delivered (deleted just
    # behind the answer to the acknowledgement)
    jobs = server_dir / "state" / "jobs"
    wait_for(lambda: not list(jobs.iterdir()), 10, f"{list(jobs.iterdir())} deleted")
    for name in ("worker1", "worker2"):
        assert not list((root / f"{name}-tmp").glob("medview-results-*/*/*.bin*"))


VANISH = """
import json, sys
from medview.formats.volume_io import read_volume, write_volume
from medview.pipeline.chain import Chain
from medview.remote.client import RemoteClient
from medview.remote.run import collect_job, submit_job

chain = Chain.from_dict(json.loads(sys.argv[1]))
with RemoteClient.for_endpoint("site", timeout_s=120) as c:
    job = submit_job(c, chain, {"image": read_volume(sys.argv[2])})
    while True:
        st = c.status(job.status.id, wait_s=0.5)
        if st.state == "running" and st.worker.startswith("tcp://"):
            print("RUNNING", st.worker, flush=True)
            break
        if st.done:
            print("ENDED", st.state, flush=True)
            sys.exit(2)
    result = collect_job(c, job)
    write_volume(result.values["step2"], sys.argv[3])
    print("ATTEMPTS", c.status(job.status.id).attempts, flush=True)
"""


def test_a_worker_machine_that_vanishes_mid_job_costs_a_retry_not_the_job(site):
    """A worker's machine drops off the network while it runs a job: the scheduler gives it
    up after its worker-ttl (5 s here), the server runs the job again on the other machine,
    and the workstation gets the local run's voxels."""
    import subprocess

    h, env, ws = site["hosts"], site["env"], site["ws"]
    chain = {"steps": [{"step": "smooth.curvature_diffusion",
                        "params": {"iterations": 100, "in_plane_only": True}}] * 2}
    rng = np.random.default_rng(12)
    vol = Volume(rng.normal(0, 100, (16, 128, 128)).astype(np.float32), (0.8, 0.8, 1.5))
    write_volume(vol, ws / "vanish.nii.gz")
    cmd = h.command("workstation", [sys.executable, "-c", VANISH, json.dumps(chain),
                                    ws / "vanish.nii.gz", ws / "vanish-out.nii.gz"])
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as proc:
        h.procs.append(proc)  # stopped at the end whatever happens here
        line = proc.stdout.readline()
        if not line.startswith("RUNNING"):
            proc.kill()
            pytest.fail(line + proc.communicate(timeout=30)[1])
        ip = line.split()[1].removeprefix("tcp://").split(":")[0]
        lost = next(n for n in ("worker1", "worker2") if h.address[n] == ip)
        h.vanish(lost)
        out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, out + err
    assert "ATTEMPTS 2" in out, out
    local = run_chain(Chain.from_dict(chain), {"image": read_volume(ws / "vanish.nii.gz")})
    assert np.array_equal(read_volume(ws / "vanish-out.nii.gz").array, local.result.array)
