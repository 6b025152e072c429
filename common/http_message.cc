#include "common/http_message.h"

#include <algorithm>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/json_quote.h"

namespace cairn {
namespace http {

Headers::Headers(std::initializer_list<Field> fields) : fields_(fields) {}

const std::string* Headers::Find(absl::string_view name) const {
  for (const Field& f : fields_) {
    if (absl::EqualsIgnoreCase(f.first, name)) return &f.second;
  }
  return nullptr;
}

std::string Headers::Get(absl::string_view name,
                         absl::string_view fallback) const {
  const std::string* v = Find(name);
  return v != nullptr ? *v : std::string(fallback);
}

void Headers::Add(absl::string_view name, absl::string_view value) {
  fields_.emplace_back(std::string(name), std::string(value));
}

void Headers::Set(absl::string_view name, absl::string_view value) {
  Remove(name);
  Add(name, value);
}

int Headers::Remove(absl::string_view name) {
  auto it = std::remove_if(fields_.begin(), fields_.end(), [&](const Field& f) {
    return absl::EqualsIgnoreCase(f.first, name);
  });
  int removed = static_cast<int>(fields_.end() - it);
  fields_.erase(it, fields_.end());
  return removed;
}

bool Headers::HasToken(absl::string_view name, absl::string_view token) const {
  for (const Field& f : fields_) {
    if (!absl::EqualsIgnoreCase(f.first, name)) continue;
    for (absl::string_view element : absl::StrSplit(f.second, ',')) {
      if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(element), token)) {
        return true;
      }
    }
  }
  return false;
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.headers.Set("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

Response Response::Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.headers.Set("Content-Type", "text/plain; charset=utf-8");
  r.body = std::move(body);
  return r;
}

Response Response::Error(int status, absl::string_view message) {
  return Json(status, "{\"error\": " + JsonQuote(message) + "}");
}

std::string CanonicalHeaderName(absl::string_view name) {
  namespace bhttp = boost::beast::http;
  bhttp::field f = bhttp::string_to_field(
      boost::beast::string_view(name.data(), name.size()));
  if (f != bhttp::field::unknown) {
    boost::beast::string_view known = bhttp::to_string(f);
    return std::string(known.data(), known.size());
  }
  std::string out(name);
  bool start_of_word = true;
  for (char& c : out) {
    c = start_of_word ? absl::ascii_toupper(c) : absl::ascii_tolower(c);
    start_of_word = (c == '-');
  }
  return out;
}

std::string ReasonPhrase(int status) {
  namespace bhttp = boost::beast::http;
  boost::beast::string_view reason =
      bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  if (reason.empty() || reason == "<unknown-status>") return "Unknown";
  return std::string(reason.data(), reason.size());
}

std::string JsonQuote(absl::string_view s) { return JsonQuoted(s); }

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(absl::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(absl::string_view query) {
  std::map<std::string, std::string> params;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    params.emplace(PercentDecode(kv.first, true),
                   PercentDecode(kv.second, true));
  }
  return params;
}

std::string SanitizeHeaderValue(absl::string_view value) {
  std::string out(value);
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

}  // namespace http
}  // namespace cairn
