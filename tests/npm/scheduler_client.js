// Drives Cairn's scheduler API (POST /api/v1/scheduler) with mesos-framework,
// a third-party "framework-framework" for Mesos v1 HTTP schedulers, used as
// its README shows: a Scheduler with one task definition, subscribe() on
// "ready", and its built-in handlers doing the rest (accepting a fitting
// offer with a LAUNCH, declining the others, acknowledging every update).
//
// Usage: node scheduler_client.js HOST:PORT LOG_DIR
//
// Protocol with tests/npm_clients_test.cc, one line each on stdout:
//   @@ SUBSCRIBED <framework id> <stream id>
//   @@ OFFERS <n>
//   @@ UPDATE <task id> <state> <agent id>   (TASK_RUNNING: the test then
//                                           has the FakeAgent finish it)
//   @@ ACKNOWLEDGED <n>                      ACKNOWLEDGE calls answered 202
//   @@ PASS      TASK_RUNNING and TASK_FINISHED seen and acknowledged, the
//                framework torn down; exit code 0
//   @@ FAIL <why>  exit code 1 (2: no progress in time)
"use strict";

const mesosFramework = require("mesos-framework");

const [master, logDir] = process.argv.slice(2);
if (!master || !logDir) {
  console.log("@@ FAIL usage: node scheduler_client.js HOST:PORT LOG_DIR");
  process.exit(1);
}
const [host, port] = master.split(":");
const Mesos = mesosFramework.Mesos.getMesos();

function report(line) {
  console.log("@@ " + line);
}
let finishing = false;  // teardown sent: the stream's end is expected
function fail(why) {
  report("FAIL " + why);
  process.exit(1);
}
const deadline = setTimeout(() => {
  report("FAIL no progress in 25 s");
  process.exit(2);
}, 25000);

const scheduler = new mesosFramework.Scheduler({
  masterUrl: host,
  port: port,
  frameworkName: "npm-mesos-framework",
  user: "nobody",
  // Its winston logger also writes a daily file: keep it in the test's
  // directory.
  logging: { path: logDir, fileName: "mesos-framework.log", level: "info" },
  masterConnectionTimeout: 10,
  tasks: {
    "npm-task": {
      instances: 1,
      commandInfo: new Mesos.CommandInfo(
          null,          // URIs
          null,          // environment (the scheduler adds HOST)
          true,          // shell
          "echo hello",  // value
          null,          // arguments
          null),         // user
      resources: { cpus: 0.5, mem: 64, disk: 0, ports: 1 },
    },
  },
});

const seen = {};  // task state -> task id
let acknowledged = 0;

scheduler.on("ready", () => scheduler.subscribe());
scheduler.on("subscribed", (s) => {
  report(`SUBSCRIBED ${s.frameworkId} ${s.mesosStreamId}`);
});
scheduler.on("offers", (offers) => {
  report(`OFFERS ${offers.offers.length}`);
});
scheduler.on("update", (update) => {
  const status = update.status;
  report(`UPDATE ${status.task_id.value} ${status.state} ` +
         `${status.agent_id ? status.agent_id.value : "-"}`);
  seen[status.state] = status.task_id.value;
});
scheduler.on("sent_acknowledge", () => {
  acknowledged++;
  report(`ACKNOWLEDGED ${acknowledged}`);
  if (seen.TASK_RUNNING && seen.TASK_FINISHED && acknowledged >= 2 &&
      !finishing) {
    finishing = true;
    scheduler.teardown();
  }
});
scheduler.on("sent_teardown", () => {
  report("PASS");
  clearTimeout(deadline);
  process.exit(0);
});
scheduler.on("error", (error) => {
  // After TEARDOWN the master ends the stream; mesos-framework reports that
  // as an error and would resubscribe.
  if (finishing) return;
  fail(typeof error === "string" ? error
       : (error && error.message) || JSON.stringify(error));
});
