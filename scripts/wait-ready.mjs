// node scripts/wait-ready.mjs URL PID SECONDS
// Waits until URL answers 200 (exit 0), the process PID ends or SECONDS
// pass (exit 1). The client test scripts wait for their server with it.
const [url, pid, seconds] = process.argv.slice(2);
const deadline = Date.now() + Number(seconds) * 1000;
while (Date.now() < deadline) {
  try {
    process.kill(Number(pid), 0);
  } catch {
    process.exit(1); // the server ended
  }
  try {
    const res = await fetch(url);
    if (res.status === 200) process.exit(0);
  } catch {
    // not listening yet
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
process.exit(1);
