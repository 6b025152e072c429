// Early-return helpers for absl::Status / absl::StatusOr<T>.
//
//   absl::Status Replica::Write(const Action& a) {
//     RETURN_IF_ERROR(storage_->Persist(a));
//     ...
//   }
//   absl::StatusOr<State> Recover() {
//     ASSIGN_OR_RETURN(Metadata metadata, storage_->ReadMetadata());
//     ASSIGN_OR_RETURN(auto actions, storage_->ReadAll(metadata.begin()));
//     ...
//   }
//
// Both macros evaluate `expr` exactly once and return the error status
// unchanged (code and message), so the caller's status-code contract holds.
// They may only be used in functions returning absl::Status or
// absl::StatusOr<U>. ASSIGN_OR_RETURN expands to several statements: do not
// use it as the sole body of an unbraced if/else, and give `lhs` types that
// contain commas a type alias first.

#ifndef CAIRN_COMMON_STATUS_MACROS_H_
#define CAIRN_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cairn {
namespace status_internal {

// RETURN_IF_ERROR accepts a Status or a StatusOr<T> (whose value is dropped).
inline absl::Status AsStatus(absl::Status status) { return status; }
template <typename T>
absl::Status AsStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace status_internal
}  // namespace cairn

// Returns the status of `expr` from the current function if it is not OK.
#define RETURN_IF_ERROR(expr)                                  \
  do {                                                         \
    ::absl::Status cairn_status_macros_status_ =               \
        ::cairn::status_internal::AsStatus(expr);              \
    if (ABSL_PREDICT_FALSE(!cairn_status_macros_status_.ok())) \
      return cairn_status_macros_status_;                      \
  } while (false)

// Evaluates `expr` (an absl::StatusOr<T>); if it is an error, returns its
// status from the current function; otherwise moves the value into `lhs`,
// which may be a declaration (`auto x`, `const Foo& foo`) or an existing
// lvalue.
#define ASSIGN_OR_RETURN(lhs, expr)                                         \
  CAIRN_STATUS_MACROS_ASSIGN_OR_RETURN_IMPL_(                               \
      CAIRN_STATUS_MACROS_CONCAT_(cairn_status_macros_statusor_, __LINE__), \
      lhs, expr)

#define CAIRN_STATUS_MACROS_CONCAT_INNER_(x, y) x##y
#define CAIRN_STATUS_MACROS_CONCAT_(x, y) \
  CAIRN_STATUS_MACROS_CONCAT_INNER_(x, y)

#define CAIRN_STATUS_MACROS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                               \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) {                             \
    return std::move(statusor).status();                                \
  }                                                                     \
  lhs = *std::move(statusor)

#endif  // CAIRN_COMMON_STATUS_MACROS_H_
