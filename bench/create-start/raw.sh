#!/usr/bin/env bash
# The floor for "create + start a VM": for N VMs, one after the other, qemu-img create a 1 GiB qcow2, start
# qemu-system-x86_64 detached in its own session, and wait until QMP query-status says "running". Prints one
# tab-separated line per VM to stdout:
#
#   vm  <index>  <total_ms>  <qemu_img_ms>  <launch_to_running_ms>  <pid>
#
# then quits every QEMU over QMP and removes its files. Timing uses bash's $EPOCHREALTIME (no process per
# sample). QMP is spoken by ONE python3 helper started before the first VM (a bash coprocess), so the
# interpreter's ~100 ms start-up is not charged to any VM.
#
# Usage: raw.sh [-n N] [-d WORKDIR] [--argv minimal|agent] [--timeout SECONDS]
#   --argv minimal  the brief's argv: q35 + tcg, -nodefaults, -m 64, virtio-blk, QMP, pidfile, -display none
#   --argv agent    the same devices and options kvm-agent's argv builder emits for the bench spec (cpu flags,
#                   serial file, balloon, -blockdev with cache.direct + io_uring, -sandbox), so the difference
#                   between the two variants is the cost of the agent's argv choices, not of the agent
# Every process it starts is killed by PID on exit, even on failure; WORKDIR (default: a mktemp dir) is removed.
set -euo pipefail
export LC_ALL=C

n=10 workdir="" variant=minimal timeout_s=10
while (($#)); do
  case "$1" in
    -n) n="$2"; shift 2 ;;
    -d) workdir="$2"; shift 2 ;;
    --argv) variant="$2"; shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "raw.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$variant" == minimal || "$variant" == agent ]] || { echo "raw.sh: --argv must be minimal or agent" >&2; exit 2; }
own_workdir=0
if [[ -z "$workdir" ]]; then workdir="$(mktemp -d /tmp/kvm-raw.XXXXXX)"; own_workdir=1; fi
mkdir -p "$workdir"
python=/usr/bin/python3; [[ -x "$python" ]] || python="$(command -v python3)"

pids=()
helper_pid=""
cleanup() {
  local rc=$?
  # Ask nicely over QMP first (the helper may already be gone), then SIGKILL by PID what is left.
  if [[ -n "$helper_pid" ]] && kill -0 "$helper_pid" 2>/dev/null; then
    for ((i = 0; i < ${#pids[@]}; i++)); do echo "quit $workdir/vm$i/qmp.sock" >&"${QMP[1]}" 2>/dev/null || true; done
    echo "exit" >&"${QMP[1]}" 2>/dev/null || true
  fi
  local deadline=$((SECONDS + 5))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.01; done
    if kill -0 "$pid" 2>/dev/null && grep -qF "$workdir" "/proc/$pid/cmdline" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  if [[ -n "$helper_pid" ]]; then kill "$helper_pid" 2>/dev/null || true; wait "$helper_pid" 2>/dev/null || true; fi
  if ((own_workdir)); then rm -rf "$workdir"; else rm -rf "${workdir:?}"/vm*; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The QMP helper: reads "wait SOCKET PID TIMEOUT" / "quit SOCKET" / "exit" lines, answers one line each.
# It connects as soon as the socket accepts, negotiates capabilities, and polls query-status until running.
coproc QMP { exec "$python" -u -c '
import json, os, socket, sys, time
def session(path, deadline):
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(max(0.05, deadline - time.monotonic())); s.connect(path); break
        except OSError:
            s.close()
            if time.monotonic() > deadline: raise TimeoutError("no QMP socket")
            time.sleep(0.001)
    f = s.makefile("rwb", buffering=0)
    def cmd(name):
        f.write(json.dumps({"execute": name}).encode() + b"\n")
        while True:
            line = f.readline()
            if not line: raise EOFError("QMP closed")
            msg = json.loads(line)
            if "return" in msg or "error" in msg: return msg
    json.loads(f.readline())  # greeting
    cmd("qmp_capabilities")
    return s, f, cmd
for line in sys.stdin:
    parts = line.split()
    if not parts: continue
    try:
        if parts[0] == "wait":
            path, pid, deadline = parts[1], int(parts[2]), time.monotonic() + float(parts[3])
            s, f, cmd = session(path, deadline)
            while cmd("query-status").get("return", {}).get("status") != "running":
                if time.monotonic() > deadline: raise TimeoutError("not running")
                time.sleep(0.001)
            s.close(); print("ok", flush=True)
        elif parts[0] == "quit":
            s, f, cmd = session(parts[1], time.monotonic() + 2); cmd("quit"); s.close(); print("ok", flush=True)
        elif parts[0] == "exit":
            break
    except Exception as e:
        print("error " + type(e).__name__ + ": " + str(e).replace("\n", " "), flush=True)
'; }
helper_pid=$QMP_PID

ms_since() { # $1 = start $EPOCHREALTIME, $2 = end: difference in ms with 2 decimals
  local a=${1/./} b=${2/./}
  local us=$((10#$b - 10#$a))
  printf '%d.%02d' $((us / 1000)) $(((us % 1000) / 10))
}

for ((i = 0; i < n; i++)); do
  d="$workdir/vm$i"
  mkdir -p "$d"
  disk="$d/disk.qcow2"
  if [[ "$variant" == minimal ]]; then
    argv=(qemu-system-x86_64 -name "raw$i" -machine q35,accel=tcg -nodefaults -m 64
      -drive "file=$disk,if=virtio,format=qcow2"
      -qmp "unix:$d/qmp.sock,server=on,wait=off" -pidfile "$d/qemu.pid" -display none)
  else
    argv=(qemu-system-x86_64 -name "guest=raw$i,debug-threads=on" -nodefaults -no-user-config -machine type=q35,accel=tcg
      -cpu qemu64,aes=on,pni=on,popcnt=on,sse4.1=on,sse4.2=on,ssse3=on -smp cpus=1,sockets=1,cores=1,threads=1,maxcpus=1 -m 64
      -pidfile "$d/qemu.pid" -chardev "socket,id=qmp,path=$d/qmp.sock,server=on,wait=off" -mon chardev=qmp,mode=control
      -chardev "file,id=serial0,path=$d/serial.log" -device isa-serial,chardev=serial0,id=serial0 -display none
      -device virtio-balloon-pci,id=balloon0,addr=0x3
      -blockdev "driver=file,filename=$disk,node-name=file-virtio0,cache.direct=on,cache.no-flush=off,aio=io_uring"
      -blockdev driver=qcow2,file=file-virtio0,node-name=drive-virtio0,cache.direct=on,cache.no-flush=off
      -device virtio-blk-pci,drive=drive-virtio0,id=virtio0,bootindex=100
      -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny)
  fi
  t0=$EPOCHREALTIME
  qemu-img create -q -f qcow2 "$disk" 1G
  t1=$EPOCHREALTIME
  setsid "${argv[@]}" </dev/null >"$d/qemu.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  echo "wait $d/qmp.sock $pid $timeout_s" >&"${QMP[1]}"
  if ! IFS= read -r -t "$((timeout_s + 5))" reply <&"${QMP[0]}"; then reply="error helper did not answer"; fi
  t2=$EPOCHREALTIME
  if [[ "$reply" != ok ]]; then
    echo "raw.sh: VM $i: $reply; qemu log: $(tail -c 500 "$d/qemu.log" 2>/dev/null)" >&2
    exit 1
  fi
  printf 'vm\t%d\t%s\t%s\t%s\t%d\n' "$i" "$(ms_since "$t0" "$t2")" "$(ms_since "$t0" "$t1")" "$(ms_since "$t1" "$t2")" "$pid"
done
