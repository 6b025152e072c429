// Event filtering for the history API (GET /api/v1/events, events_api.h):
// an event's type name, the ids of what it concerns, and a filter over both.
//
// Type names are the field names of cairn.v1.Event's `type` oneof
// ("task_status_updated", "agent_removed"), read from the descriptor, so a
// new event type is filterable by name without a change here.
//
// Subjects: SubjectsOf() says which frameworks, agents and tasks an event
// concerns, from the event alone (no state lookup): what its ids name.
// Its switch has no default, so adding an event type to master.proto breaks
// the build (-Wswitch -Werror) until someone decides what it concerns.
// Known blind spots of "the event alone": TaskKillRequested names no agent
// (the task's agent is in the state, not in the event), and OffersRescinded
// / OffersExpired name only offer ids.
//
// Thread safety: pure functions; an EventFilter is immutable once built and
// may be shared between threads.

#ifndef CAIRN_MASTER_EVENT_FILTER_H_
#define CAIRN_MASTER_EVENT_FILTER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "cairn/v1/master.pb.h"

namespace cairn::master {

// The oneof field name of the event's type, e.g. "task_status_updated";
// "" when no type is set.
std::string EventTypeName(const v1::Event& event);

// The type called `name` (as EventTypeName spells it); nullopt for a name
// that is not a type of cairn.v1.Event.
std::optional<v1::Event::TypeCase> EventTypeFromName(absl::string_view name);

// Every type name, in field-number order (for error messages and docs).
std::vector<std::string> AllEventTypeNames();

// The ids an event concerns. A task id is only meaningful with its
// framework; the lists hold each id once, in the order first met.
struct EventSubjects {
  std::vector<std::string> framework_ids;
  std::vector<std::string> agent_ids;
  std::vector<std::string> task_ids;
};

// What `event` concerns (see the file comment).
EventSubjects SubjectsOf(const v1::Event& event);

// Which events a stream carries: all given conditions must hold (an empty
// condition holds for every event).
struct EventFilter {
  // The event's type is one of these (empty: any type).
  absl::flat_hash_set<v1::Event::TypeCase> types;
  // SubjectsOf(event) names this framework / agent / task ("": any).
  std::string framework_id;
  std::string agent_id;
  std::string task_id;

  bool Matches(const v1::Event& event) const;
  // True when the filter lets every event through.
  bool empty() const {
    return types.empty() && framework_id.empty() && agent_id.empty() &&
           task_id.empty();
  }
};

}  // namespace cairn::master

#endif  // CAIRN_MASTER_EVENT_FILTER_H_
