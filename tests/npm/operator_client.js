// Drives Cairn's operator API (POST /api/v1) with @dcos/mesos-client, the
// DC/OS UI team's Mesos v1 operator client, exactly as its README uses it:
// `stream({type: "SUBSCRIBE"}, url)` and `request({type: ...}, url)`.
//
// Usage: node operator_client.js http://127.0.0.1:PORT AGENT_HOSTNAME
//
// The client is written for browsers (XMLHttpRequest through
// @dcos/connections); jsdom's spec-following XMLHttpRequest stands in for the
// browser's, with the master's origin as the page's, so no CORS is involved.
//
// Protocol with tests/npm_clients_test.cc, one line each on stdout:
//   @@ SUBSCRIBED ...     the SUBSCRIBE stream's first event has arrived (the
//                         test then subscribes a FakeAgent named
//                         AGENT_HOSTNAME)
//   @@ AGENT_ADDED <id>   the stream announced that agent
//   @@ GET_STATE ...      GET_STATE lists it
//   @@ PASS               everything held; exit code 0
//   @@ FAIL <why>         exit code 1 (2: no progress in time)
"use strict";

const { JSDOM } = require("jsdom");

const [base, agentHostname] = process.argv.slice(2);
if (!base || !agentHostname) {
  console.log("@@ FAIL usage: node operator_client.js BASE_URL AGENT_HOSTNAME");
  process.exit(1);
}
const dom = new JSDOM("", { url: base + "/" });
global.XMLHttpRequest = dom.window.XMLHttpRequest;

const { request, stream } = require("@dcos/mesos-client");
const url = base + "/api/v1";

function report(line) {
  console.log("@@ " + line);
}
function fail(why) {
  report("FAIL " + why);
  process.exit(1);
}
function check(condition, why) {
  if (!condition) fail(why);
}
const deadline = setTimeout(() => {
  report("FAIL no progress in 20 s");
  process.exit(2);
}, 20000);

// One operator call through the client; resolves with the parsed answer.
function call(type) {
  return new Promise((resolve, reject) => {
    request({ type }, url).subscribe(
      (text) => {
        try {
          resolve(JSON.parse(text));
        } catch (e) {
          reject(new Error(`${type}: answer is not JSON: ${text}`));
        }
      },
      (error) => reject(new Error(`${type}: ${JSON.stringify(error)}`))
    );
  });
}

// The state's agents, by the GetState shape of master.proto.
function agentsOf(getState) {
  return (getState.get_agents && getState.get_agents.agents) || [];
}

async function main() {
  // Plain calls first: each answer names its type and carries its member.
  const health = await call("GET_HEALTH");
  check(health.type === "GET_HEALTH", "GET_HEALTH type: " + JSON.stringify(health));
  check(health.get_health && health.get_health.healthy === true,
        "GET_HEALTH not healthy: " + JSON.stringify(health));
  const version = await call("GET_VERSION");
  check(version.get_version && version.get_version.version_info &&
            typeof version.get_version.version_info.version === "string",
        "GET_VERSION: " + JSON.stringify(version));
  const before = await call("GET_STATE");
  check(before.type === "GET_STATE" && before.get_state,
        "GET_STATE: " + JSON.stringify(before));
  report(`CALLS GET_HEALTH GET_VERSION GET_STATE agents=${agentsOf(before.get_state).length}`);

  let agentId = null;
  const types = [];
  const subscription = stream({ type: "SUBSCRIBE" }, url).subscribe(
    (record) => {
      let event;
      try {
        event = JSON.parse(record);
      } catch (e) {
        fail("a record is not JSON: " + JSON.stringify(record));
      }
      types.push(event.type);
      if (event.type === "SUBSCRIBED") {
        const subscribed = event.subscribed;
        check(subscribed && subscribed.get_state,
              "SUBSCRIBED without get_state: " + record);
        check(typeof subscribed.heartbeat_interval_seconds === "number",
              "SUBSCRIBED without heartbeat_interval_seconds: " + record);
        report(`SUBSCRIBED agents=${agentsOf(subscribed.get_state).length} ` +
               `heartbeat_interval_seconds=${subscribed.heartbeat_interval_seconds}`);
      } else if (event.type === "AGENT_ADDED") {
        const info = event.agent_added.agent.agent_info;
        if (info.hostname !== agentHostname) return;
        agentId = info.id.value;
        report(`AGENT_ADDED ${agentId}`);
        verifyState(agentId).then(() => {
          subscription.unsubscribe();
          report("EVENTS " + types.join(","));
          report("PASS");
          clearTimeout(deadline);
          process.exit(0);
        }, (error) => fail(error.message));
      }
    },
    (error) => fail("SUBSCRIBE stream failed: " + JSON.stringify(error)),
    () => fail("SUBSCRIBE stream ended; events: " + types.join(","))
  );
}

// GET_STATE (through the client again) lists the agent the stream announced,
// with the resources it registered.
async function verifyState(id) {
  const state = await call("GET_STATE");
  const agents = agentsOf(state.get_state);
  const agent = agents.find((a) => a.agent_info.id.value === id);
  check(agent, `GET_STATE lacks agent ${id}: ${JSON.stringify(state)}`);
  check(agent.agent_info.hostname === agentHostname,
        "GET_STATE hostname: " + JSON.stringify(agent));
  const cpus = (agent.total_resources || []).find((r) => r.name === "cpus");
  check(cpus && cpus.type === "SCALAR" && cpus.scalar.value === 4,
        "GET_STATE total_resources: " + JSON.stringify(agent));
  report(`GET_STATE agents=${agents.length} agent=${id} active=${agent.active}`);
}

main().catch((error) => fail(error.message));
