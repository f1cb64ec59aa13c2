"""Issue 16's acceptance: a day-one workflow written only in docker's syntax runs unchanged
against pyrt.  The script below is a shell script as a docker user writes it; ``docker``
is a shell function that calls pyrt with the test's private store, nothing else.  Each
step checks its own result (``set -e`` and explicit comparisons), so the script's exit
status is the test's verdict, and its transcript is in the failure message."""
import subprocess

import pytest

DAY_ONE = r'''
set -eu
fail() { echo "FAILED: $*" >&2; exit 1; }

# a named volume, labelled
docker volume create --label project=shop pgdata >/dev/null
[ "$(docker volume ls -q --filter label=project=shop)" = pgdata ] || fail "volume ls --filter label"

# a detached service with a name, labels, env, a volume and a tmpfs
docker run -d --name db --network none -l tier=back -l project=shop -e POSTGRES_PASSWORD=secret \
    -v pgdata:/var/lib/data --tmpfs /scratch:size=8m \
    "$IMAGE" sh -c 'echo ready; echo hello > /var/lib/data/greeting; exec sleep 300' >/dev/null
docker run -d --name web --network none -l tier=front -l project=shop "$IMAGE" sleep 300 >/dev/null

# inspect -f as scripts use it
[ "$(docker inspect -f '{{.State.Running}}' db)" = true ] || fail "inspect .State.Running"
pid="$(docker inspect -f '{{.State.Pid}}' db)"
[ -d "/proc/$pid" ] || fail "inspect .State.Pid is not a live process"
[ "$(docker inspect -f '{{index .Config.Labels "tier"}}' db)" = back ] || fail "inspect index Labels"
[ "$(docker inspect --format '{{range .Mounts}}{{.Name}}{{end}}' db)" = pgdata ] || fail "inspect range Mounts"
[ "$(docker inspect -f '{{json .HostConfig.Tmpfs}}' db)" = '{"/scratch":"size=8388608"}' ] || fail "HostConfig.Tmpfs"
docker inspect -f '{{json .Config.Env}}' db | grep -q POSTGRES_PASSWORD=secret || fail "inspect json Env"
[ "$(docker container inspect -f '{{.Name}}' web)" = /web ] || fail "container inspect"

# ps with filters and formats
[ "$(docker ps --filter label=project=shop --format '{{.Names}}' | sort | tr '\n' ' ')" = "db web " ] \
    || fail "ps --filter label --format"
[ "$(docker ps -q --filter name=^/db$ | wc -l)" = 1 ] || fail "ps --filter name"
[ "$(docker ps --filter label=tier=front --format '{{.Names}} {{.Label "tier"}}')" = "web front" ] \
    || fail "ps --format .Label"
docker ps --format json | grep -q '"Names":"db"' || fail "ps --format json"
[ "$(docker container ls -a -q | wc -l)" = 2 ] || fail "container ls -a -q"

# logs and exec
for i in 1 2 3 4 5 6 7 8 9 10; do docker logs db | grep -q ready && break; sleep 0.2; done
[ "$(docker logs db)" = ready ] || fail "logs"
[ "$(docker exec db cat /var/lib/data/greeting)" = hello ] || fail "exec reads the volume"
[ "$(docker exec -e X=1 db sh -c 'echo $X')" = 1 ] || fail "exec -e"
docker exec db sh -c 'mount | grep -q " /scratch type tmpfs"' || fail "--tmpfs"

# stop, the data outlives the container, rm
docker stop -t 2 db >/dev/null
[ "$(docker inspect -f '{{.State.Status}}' db)" = exited ] || fail "stopped status"
docker rm db >/dev/null
[ "$(docker run --rm --network none -v pgdata:/d "$IMAGE" cat /d/greeting)" = hello ] || fail "volume data kept"

# a foreground run is logged too, and its exit code is the command's
set +e; docker run --name once --network none "$IMAGE" sh -c 'echo out; exit 3'; code=$?; set -e
[ "$code" = 3 ] || fail "run exit code $code"
[ "$(docker logs once)" = out ] || fail "logs of a foreground run"

# clean up the docker way
docker rm -f web once >/dev/null
docker volume rm pgdata >/dev/null
[ -z "$(docker ps -aq)" ] || fail "containers left"
[ -z "$(docker volume ls -q)" ] || fail "volumes left"
echo DAY-ONE-OK
'''


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def test_a_day_one_docker_script_runs_unchanged(cli):
    prelude = ("docker() { " + " ".join(f"'{a}'" for a in cli.argv()) + ' "$@"; }\n'
               f"IMAGE='{cli.image}'\n")
    r = subprocess.run(["bash", "-c", prelude + DAY_ONE], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("DAY-ONE-OK"), (
        f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
