#!/usr/bin/env python3
"""Three kontiki boards in three QEMU processes, linked by serial lines.

Each board is QEMU's mps2-an385 (a Cortex-M3) running this firmware. Its
UART1 and UART2 are its lines to the two other boards: QEMU socket
character devices on loopback, the lower-numbered board of a pair
listening and the other connecting, and reconnecting every second after
the listener restarts. (UDP character devices would need no connection,
but QEMU stops reading one for good after the first ICMP error, which a
killed peer causes.) Bytes written while the other end is down are lost,
as on a real line with the other board off; a frame cut short fails its
checksum. Its flash is the board's PSRAM, backed by a file of its own
that outlives the process.

The run: the boards elect a leader, whose client task commits commands;
the leader's QEMU process is killed (SIGKILL, mid-write as it may be);
the other two elect a new leader and go on committing; the killed board
restarts on its flash image and catches up; every board ends with the
same commands applied in the same order (count and digest). Then it
prints, per board: flash (.text), static RAM, peak heap, election and
failover times, and the messages a line carried per second.

Usage: run.py path/to/firmware.elf [--timeout SECONDS]
Exit status 0 when every check passed.
"""

import argparse
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BOARDS = [1, 2, 3]
# The client task stops proposing once this much of the log is committed
# (COMMANDS in src/main.rs).
COMMANDS = 600
KILL_AT_COMMIT = 200
PSRAM_BYTES = 16 * 1024 * 1024


def free_tcp_ports(count):
    """Ports that were free a moment ago (the kernel's choice)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def peers_of(board):
    return [other for other in BOARDS if other != board]


class Board:
    """One QEMU process, and the lines it printed, timestamped."""

    def __init__(self, number, elf, image, ports, lines):
        self.number = number
        self.elf = elf
        self.image = image
        self.ports = ports
        self.lines = lines
        self.process = None
        self.last_status = None
        self.heap_peak = 0

    def command(self):
        args = [
            "qemu-system-arm", "-machine", "mps2-an385,memory-backend=psram",
            "-object",
            f"memory-backend-file,id=psram,size={PSRAM_BYTES},mem-path={self.image},share=on",
            "-nographic", "-monitor", "none",
            "-semihosting-config", f"enable=on,target=native,arg=kontiki-board,arg={self.number}",
            "-serial", "null",
        ]
        # UART1 and UART2 go to the peers in order, as the firmware expects.
        for line, peer in enumerate(peers_of(self.number)):
            port = self.ports[tuple(sorted((self.number, peer)))]
            end = "server=on,wait=off" if self.number < peer else "reconnect=1"
            args += [
                "-chardev", f"socket,id=line{line},host=127.0.0.1,port={port},nodelay=on,{end}",
                "-serial", f"chardev:line{line}",
            ]
        return args + ["-kernel", self.elf]

    def start(self):
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1)
        process = self.process

        def read():
            for text in process.stdout:
                self.lines.put((time.monotonic(), self.number, process.pid, text.rstrip("\n")))

        threading.Thread(target=read, daemon=True).start()

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.kill()


def fields(text):
    return dict(pair.split("=", 1) for pair in text.split()[1:] if "=" in pair)


class Run:
    def __init__(self, elf, workdir, timeout):
        self.lines = queue.Queue()
        self.deadline = time.monotonic() + timeout
        pairs = [(a, b) for a in BOARDS for b in BOARDS if a < b]
        ports = free_tcp_ports(len(pairs))
        port_of = dict(zip(pairs, ports))
        self.boards = {}
        for number in BOARDS:
            image = os.path.join(workdir, f"board{number}.img")
            # A fresh NOR flash reads as all ones.
            with open(image, "wb") as file:
                file.write(b"\xff" * PSRAM_BYTES)
            self.boards[number] = Board(number, elf, image, port_of, self.lines)
        self.log = []

    def next_line(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the run took too long")
        try:
            at, number, pid, text = self.lines.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError("the run took too long") from None
        board = self.boards[number]
        if board.process is None or board.process.pid != pid:
            return None  # a line from a process already killed
        self.log.append(f"{at:10.3f} [{number}] {text}")
        if text.startswith("status "):
            status = fields(text)
            board.last_status = (at, status)
            board.heap_peak = max(board.heap_peak, int(status["heap_peak"]))
        if "panicked" in text or "stopped" in text or "cannot use" in text:
            raise RuntimeError(f"board {number}: {text}")
        return at, number, text

    def wait_for(self, what, test):
        while True:
            line = self.next_line()
            if line is not None and test(*line):
                return line

    def status(self, number):
        return self.boards[number].last_status[1]

    def execute(self):
        started = time.monotonic()
        for board in self.boards.values():
            board.start()
        at, leader, text = self.wait_for(
            "a leader", lambda at, number, text: text.startswith("leader "))
        election_ms = int(fields(text)["uptime_ms"])
        print(f"board {leader} leads after {election_ms} ms of its uptime "
              f"({at - started:.2f} s after the processes started)")

        self.wait_for("commits", lambda at, number, text: text.startswith("status ")
                      and fields(text)["role"] == "Leader"
                      and int(fields(text)["commit"]) >= KILL_AT_COMMIT)
        # The board that leads now (leadership may have moved since).
        leader = max((board for board in self.boards.values() if board.last_status
                      and board.last_status[1]["role"] == "Leader"),
                     key=lambda board: int(board.last_status[1]["term"])).number
        killed_at_commit = int(self.status(leader)["commit"])
        killed = time.monotonic()
        self.boards[leader].kill()
        print(f"killed board {leader}'s QEMU (SIGKILL) at commit {killed_at_commit}")
        at, new_leader, text = self.wait_for(
            "a new leader", lambda at, number, text: text.startswith("leader ")
            and number != leader)
        failover_ms = (at - killed) * 1000
        print(f"board {new_leader} leads term {fields(text)['term']} "
              f"{failover_ms:.0f} ms after the kill")

        # Messages the lines carry: what each live board received over at
        # least two seconds of commits.
        alive = [number for number in BOARDS if number != leader]
        self.wait_for("statuses", lambda at, number, text: text.startswith("status ")
                      and all(self.boards[b].last_status
                              and self.boards[b].last_status[0] > killed for b in alive))
        first = {number: self.boards[number].last_status for number in alive}
        self.wait_for("two seconds", lambda at, number, text: text.startswith("status ")
                      and all(self.boards[b].last_status[0] - first[b][0] >= 2.0
                              for b in alive))
        received_rate = {}
        for number in alive:
            (at0, status0), (at1, status1) = first[number], self.boards[number].last_status
            received_rate[number] = (int(status1["received"]) - int(status0["received"])) / (at1 - at0)
        (at0, status0), (at1, status1) = first[new_leader], self.boards[new_leader].last_status
        commit_rate = (int(status1["commit"]) - int(status0["commit"])) / (at1 - at0)
        print(f"with board {leader} down: {commit_rate:.0f} commits/s; messages received per "
              "second: " + ", ".join(f"board {b} {received_rate[b]:.0f}" for b in alive))

        restarted = time.monotonic()
        self.boards[leader].start()
        at, number, text = self.wait_for(
            "the restarted board's flash", lambda at, number, text: number == leader
            and text.startswith("flash "))
        found = fields(text)
        print(f"board {leader} restarted on its flash: generation {found['generation']}, "
              f"term {found['term']}, snapshot at {found['snapshot']}, log to {found['last']} "
              f"(opened in {found['open_ms']} ms)")
        if int(found["last"]) < killed_at_commit:
            raise RuntimeError(
                f"board {leader}'s flash holds its log to {found['last']}, "
                f"less than the {killed_at_commit} it had committed")

        def settled(at, number, text):
            """Every board, since the restart, reports the same state, with
            the client's commands all applied."""
            if not text.startswith("status "):
                return False
            states = [board.last_status for board in self.boards.values()]
            if any(state is None or state[0] < restarted for state in states):
                return False
            views = {(s["applied"], s["count"], s["digest"]) for _, s in states}
            applied = int(states[0][1]["applied"])
            return len(views) == 1 and applied >= COMMANDS

        self.wait_for("the same state on every board", settled)
        state = self.status(leader)
        print(f"every board applied the log to {state['applied']}: "
              f"{state['count']} commands, digest {state['digest']}")

        # Idle, with heartbeats going: the heap must not grow. The window
        # starts one second after the boards agree: the leader's last
        # answers and commit news still arrive just then, and one of them
        # can take a buffer's one-time growth (a 64-byte step seen in about
        # two runs of five, flat after it); a leak grows on, a step does
        # not.
        agreed = {number: board.last_status[0] for number, board in self.boards.items()}
        self.wait_for("one second after agreeing", lambda at, number, text: all(
            board.last_status[0] - agreed[b] >= 1.0 for b, board in self.boards.items()))
        heaps = {number: board.last_status for number, board in self.boards.items()}
        self.wait_for("three seconds idle", lambda at, number, text: all(
            board.last_status[0] - heaps[b][0] >= 3.0 for b, board in self.boards.items()))
        for number, board in self.boards.items():
            before, after = int(heaps[number][1]["heap"]), int(board.last_status[1]["heap"])
            received = int(board.last_status[1]["received"]) - int(heaps[number][1]["received"])
            if after > before:
                raise RuntimeError(f"board {number}'s heap grew from {before} to {after} bytes "
                                   f"over three idle seconds")
            print(f"board {number}: heap {after} bytes, unchanged over three idle seconds "
                  f"and {received} messages")
        return {
            "election_ms": election_ms,
            "failover_ms": failover_ms,
            "received_rate": received_rate,
            "commit_rate": commit_rate,
        }

    def stop(self):
        for board in self.boards.values():
            board.stop()


def sizes(elf):
    out = subprocess.run(["arm-none-eabi-size", elf], capture_output=True, text=True,
                         check=True).stdout.split("\n")[1].split()
    text, data, bss = (int(value) for value in out[:3])
    return text, data, bss


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("elf")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--keep", help="keep the flash images and log in this directory")
    args = parser.parse_args()
    workdir = args.keep or tempfile.mkdtemp(prefix="kontiki-boards-")
    os.makedirs(workdir, exist_ok=True)
    run = Run(args.elf, workdir, args.timeout)
    try:
        measured = run.execute()
    except (RuntimeError, TimeoutError) as error:
        print(f"FAILED: {error}", file=sys.stderr)
        print("\n".join(run.log[-60:]), file=sys.stderr)
        return 1
    finally:
        run.stop()
        with open(os.path.join(workdir, "boards.log"), "w") as file:
            file.write("\n".join(run.log) + "\n")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text, data, bss = sizes(args.elf)
    print()
    print(f"election {measured['election_ms']} ms (the first leader's uptime), "
          f"failover {measured['failover_ms']:.0f} ms (from the kill to the new leader's "
          f"report), {measured['commit_rate']:.0f} commits/s with two boards")
    print()
    print("| board | flash (.text) | static RAM (.data + .bss) | peak heap | "
          "messages received/s, two boards up |")
    print("|---|---|---|---|---|")
    for number, board in run.boards.items():
        rate = measured["received_rate"].get(number)
        rate = f"{rate:.0f}" if rate is not None else "(killed)"
        print(f"| {number} | {text} | {data + bss} | {board.heap_peak} | {rate} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
