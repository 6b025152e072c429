// JSON string literals: the one escaper behind every JSON Cairn writes by
// hand (http::JsonQuote, the flags' JSON, common/json's Mesos printer).
//
// Quotes, backslashes and control characters are escaped (\" \\ \b \f \n \r
// \t, other controls as \u00XX); every other byte, UTF-8 included, is copied
// as is.
//
// Thread safety: pure functions.

#ifndef CAIRN_COMMON_JSON_QUOTE_H_
#define CAIRN_COMMON_JSON_QUOTE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace cairn {

// Appends `s` as a JSON string literal (with its quotes) to `*out`.
void AppendJsonQuoted(absl::string_view s, std::string* out);

// `s` as a JSON string literal.
std::string JsonQuoted(absl::string_view s);

}  // namespace cairn

#endif  // CAIRN_COMMON_JSON_QUOTE_H_
