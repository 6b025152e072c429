// HTTP/1.1 message types shared by Cairn's HTTP server and client.
//
// `Headers` is an ordered list of header fields with case-insensitive name
// lookup ("content-type" finds "Content-Type"). `Request` is what a server
// handler receives; `Response` is a complete (non-streaming) answer, used both
// by server handlers and as the client's result.
//
// These are plain values: not synchronized, safe to copy and move, and safe to
// use from one thread at a time.

#ifndef CAIRN_COMMON_HTTP_MESSAGE_H_
#define CAIRN_COMMON_HTTP_MESSAGE_H_

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace cairn {
namespace http {

// Ordered header fields. Names compare case-insensitively; the spelling given
// to Add/Set is kept, and the server/client send names in conventional
// capitalisation ("Content-Type") whatever spelling was stored.
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;
  using const_iterator = std::vector<Field>::const_iterator;

  Headers() = default;
  Headers(std::initializer_list<Field> fields);

  // Returns a pointer to the value of the first field called `name`, or
  // nullptr when there is none. The pointer is valid until the next mutation.
  const std::string* Find(absl::string_view name) const;

  // Returns the value of the first field called `name`, or `fallback`.
  std::string Get(absl::string_view name,
                  absl::string_view fallback = "") const;

  bool Has(absl::string_view name) const { return Find(name) != nullptr; }

  // Appends a field (repeated names are allowed, e.g. Set-Cookie).
  void Add(absl::string_view name, absl::string_view value);

  // Replaces every field called `name` by one field with `value`.
  void Set(absl::string_view name, absl::string_view value);

  // Removes every field called `name`. Returns how many were removed.
  int Remove(absl::string_view name);

  // True when some comma-separated element of the `name` fields equals
  // `token` case-insensitively (e.g. HasToken("Connection", "close")).
  bool HasToken(absl::string_view name, absl::string_view token) const;

  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

// A request as received by a server handler.
struct Request {
  std::string method;  // as sent, e.g. "GET", "POST"
  std::string target;  // the raw request-target, e.g. "/files/read?path=%2Fx"
  std::string path;    // target up to '?', not percent-decoded
  // Query parameters, percent-decoded ('+' means space). When a key repeats,
  // the first value is kept.
  std::map<std::string, std::string> query;
  Headers headers;
  std::string body;  // de-chunked when the client used chunked encoding
  int version = 11;  // 10 for HTTP/1.0, 11 for HTTP/1.1
  std::string remote_address;  // peer IP address, e.g. "127.0.0.1"
  uint16_t remote_port = 0;
};

// A complete response: status, headers and body. The server adds
// Content-Length and Connection; handlers set the rest.
struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  // `body` with Content-Type: application/json.
  static Response Json(int status, std::string body);
  // `body` with Content-Type: text/plain; charset=utf-8.
  static Response Text(int status, std::string body);
  // {"error": "<message>"} with Content-Type: application/json.
  static Response Error(int status, absl::string_view message);
};

// Returns `name` in conventional capitalisation: the registered spelling for
// known fields ("www-authenticate" -> "WWW-Authenticate"), otherwise each
// dash-separated word capitalised ("x-mesos-stream-id" -> "X-Mesos-Stream-Id").
std::string CanonicalHeaderName(absl::string_view name);

// Returns the standard reason phrase for `status` ("Not Found"), or "Unknown".
std::string ReasonPhrase(int status);

// Returns `s` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view s);

// Decodes %XX escapes, and '+' as space when `plus_is_space`. Malformed
// escapes are kept literally.
std::string PercentDecode(absl::string_view s, bool plus_is_space);

// Parses "a=1&b=x%20y" into a map (first value wins for repeated keys).
std::map<std::string, std::string> ParseQuery(absl::string_view query);

// Replaces CR and LF (which would end a header line) with spaces.
std::string SanitizeHeaderValue(absl::string_view value);

}  // namespace http
}  // namespace cairn

#endif  // CAIRN_COMMON_HTTP_MESSAGE_H_
