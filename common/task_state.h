// Facts about Mesos task states that every component needs alike.

#ifndef CAIRN_COMMON_TASK_STATE_H_
#define CAIRN_COMMON_TASK_STATE_H_

#include "cairn/v1/mesos.pb.h"

namespace cairn {

// True for the states a task never leaves (Mesos's terminal states:
// FINISHED, FAILED, KILLED, ERROR, LOST, DROPPED, GONE, GONE_BY_OPERATOR).
// TASK_UNKNOWN and TASK_UNREACHABLE are not terminal: the task may still
// turn up.
bool IsTerminalState(v1::TaskState state);

}  // namespace cairn

#endif  // CAIRN_COMMON_TASK_STATE_H_
