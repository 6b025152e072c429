#include "log/client.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace cairn::log {

namespace {

// A parsed JSON value: just enough JSON for the log API's answers. (Not
// protobuf's Struct: under GCC's TSan, protobuf's inlined Map code crashes
// against Debian's uninstrumented libprotobuf.)
struct Json {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  std::string text;         // a string's value, a number's or bool's spelling
  std::vector<Json> items;  // kArray
  std::vector<std::pair<std::string, Json>> fields;  // kObject, in order

  // A field's string or number text; "" when absent or of another kind.
  std::string Field(absl::string_view name) const {
    for (const auto& [key, value] : fields) {
      if (key != name) continue;
      if (value.kind == Kind::kString || value.kind == Kind::kNumber) {
        return value.text;
      }
      return "";
    }
    return "";
  }
};

class JsonParser {
 public:
  explicit JsonParser(absl::string_view text) : text_(text) {}

  // The whole text as one value; nullopt if it is not valid JSON.
  std::optional<Json> ParseDocument() {
    std::optional<Json> value = ParseValue(0);
    SkipSpace();
    if (!value.has_value() || pos_ != text_.size()) return std::nullopt;
    return value;
  }

 private:
  static constexpr int kMaxDepth = 64;

  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' ||
            text_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool ConsumeWord(absl::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  std::optional<Json> ParseValue(int depth) {
    if (depth > kMaxDepth) return std::nullopt;
    SkipSpace();
    if (pos_ >= text_.size()) return std::nullopt;
    Json value;
    const char c = text_[pos_];
    if (c == '{') {
      ++pos_;
      value.kind = Json::Kind::kObject;
      if (Consume('}')) return value;
      do {
        SkipSpace();
        std::optional<std::string> key = ParseString();
        if (!key.has_value() || !Consume(':')) return std::nullopt;
        std::optional<Json> field = ParseValue(depth + 1);
        if (!field.has_value()) return std::nullopt;
        value.fields.emplace_back(*std::move(key), *std::move(field));
      } while (Consume(','));
      if (!Consume('}')) return std::nullopt;
      return value;
    }
    if (c == '[') {
      ++pos_;
      value.kind = Json::Kind::kArray;
      if (Consume(']')) return value;
      do {
        std::optional<Json> item = ParseValue(depth + 1);
        if (!item.has_value()) return std::nullopt;
        value.items.push_back(*std::move(item));
      } while (Consume(','));
      if (!Consume(']')) return std::nullopt;
      return value;
    }
    if (c == '"') {
      std::optional<std::string> s = ParseString();
      if (!s.has_value()) return std::nullopt;
      value.kind = Json::Kind::kString;
      value.text = *std::move(s);
      return value;
    }
    for (absl::string_view word : {"true", "false"}) {
      if (ConsumeWord(word)) {
        value.kind = Json::Kind::kBool;
        value.text = std::string(word);
        return value;
      }
    }
    if (ConsumeWord("null")) return value;
    const size_t start = pos_;
    while (pos_ < text_.size() &&
           (absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_])) ||
            text_[pos_] == '-' || text_[pos_] == '+' || text_[pos_] == '.' ||
            text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
    }
    if (pos_ == start) return std::nullopt;
    value.kind = Json::Kind::kNumber;
    value.text = std::string(text_.substr(start, pos_ - start));
    return value;
  }

  // A string literal at pos_ (escapes decoded; \u to UTF-8).
  std::optional<std::string> ParseString() {
    if (pos_ >= text_.size() || text_[pos_] != '"') return std::nullopt;
    ++pos_;
    std::string out;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) return std::nullopt;
      const char e = text_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t code = 0;
          if (pos_ + 4 > text_.size()) return std::nullopt;
          for (int i = 0; i < 4; ++i) {
            const char h = text_[pos_++];
            code <<= 4;
            if (h >= '0' && h <= '9') {
              code |= h - '0';
            } else if (h >= 'a' && h <= 'f') {
              code |= h - 'a' + 10;
            } else if (h >= 'A' && h <= 'F') {
              code |= h - 'A' + 10;
            } else {
              return std::nullopt;
            }
          }
          // Surrogate pairs are kept as two code points: error messages
          // only, and they are rare there.
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
          }
          break;
        }
        default:
          return std::nullopt;
      }
    }
    return std::nullopt;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

absl::StatusOr<Json> ParseJson(absl::string_view text) {
  std::optional<Json> value = JsonParser(text).ParseDocument();
  if (!value.has_value()) {
    return absl::InternalError(
        absl::StrCat("unparsable answer from the server: ", text));
  }
  return *std::move(value);
}

absl::StatusOr<uint64_t> NumberField(const Json& object,
                                     absl::string_view name) {
  uint64_t value = 0;
  if (!absl::SimpleAtoi(object.Field(name), &value)) {
    return absl::InternalError(
        absl::StrCat("the server's answer lacks a numeric '", name, "'"));
  }
  return value;
}

// True for a 503 after which the entry is certainly not in the log.
bool RetryableUnavailable(const http::Response& response) {
  if (response.status != 503) return false;
  auto object = ParseJson(response.body);
  return !object.ok() || object->Field("outcome") != "unknown";
}

}  // namespace

absl::StatusOr<std::vector<PeerAddress>> ParseAddressList(
    absl::string_view list) {
  std::vector<PeerAddress> addresses;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    auto address = ParsePeerAddress(part);
    if (!address.ok()) return address.status();
    addresses.push_back(*std::move(address));
  }
  if (addresses.empty()) {
    return absl::InvalidArgumentError(
        "no address given (expected host:port[,host:port...])");
  }
  return addresses;
}

absl::Status ErrorFromResponse(const http::Response& response) {
  std::string message = response.body;
  auto object = ParseJson(response.body);
  if (object.ok() && !object->Field("error").empty()) {
    message = object->Field("error");
  }
  message = absl::StrCat("HTTP ", response.status, ": ", message);
  switch (response.status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 404:
      return absl::NotFoundError(message);
    case 409:
      return absl::FailedPreconditionError(message);
    case 503:
      return absl::UnavailableError(message);
    case 504:
      return absl::DeadlineExceededError(message);
    default:
      return absl::InternalError(message);
  }
}

LogClient::LogClient(LogClientOptions options) : options_(std::move(options)) {
  http::ClientOptions http_options;
  http_options.follow_redirects = true;
  http_ = std::make_unique<http::Client>(http_options);
}

LogClient::~LogClient() = default;

absl::StatusOr<std::string> LogClient::Write(absl::string_view target,
                                             absl::string_view body) {
  if (options_.addresses.empty()) {
    return absl::InvalidArgumentError("no replica address given");
  }
  const absl::Time deadline = absl::Now() + options_.timeout;
  absl::Status last = absl::DeadlineExceededError("no replica was tried");
  while (true) {
    for (size_t i = 0; i < options_.addresses.size(); ++i) {
      const size_t index = (preferred_ + i) % options_.addresses.size();
      const PeerAddress& address = options_.addresses[index];
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      auto response = http_->Request(
          "POST", address.host, address.port, target,
          {{"Content-Type", "application/octet-stream"}}, body, left);
      if (!response.ok()) {
        last = absl::Status(response.status().code(),
                            absl::StrCat(address.ToString(), ": ",
                                         response.status().message()));
        http_->CloseConnection();
        continue;
      }
      if (response->status == 200) {
        preferred_ = index;
        return response->body;
      }
      if (RetryableUnavailable(*response)) {
        last = ErrorFromResponse(*response);
        continue;
      }
      return ErrorFromResponse(*response);
    }
    if (absl::Now() + options_.retry_interval >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          "no replica accepted the request within ",
          absl::FormatDuration(options_.timeout), "; last: ", last.message()));
    }
    absl::SleepFor(options_.retry_interval);
  }
}

absl::StatusOr<http::Response> LogClient::Get(absl::string_view target) {
  if (options_.addresses.empty()) {
    return absl::InvalidArgumentError("no replica address given");
  }
  const absl::Time deadline = absl::Now() + options_.timeout;
  absl::Status last = absl::DeadlineExceededError("no replica was tried");
  for (size_t i = 0; i < options_.addresses.size(); ++i) {
    const size_t index = (preferred_ + i) % options_.addresses.size();
    const PeerAddress& address = options_.addresses[index];
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    auto response =
        http_->Request("GET", address.host, address.port, target, {}, "", left);
    if (response.ok()) {
      preferred_ = index;
      return response;
    }
    last = absl::Status(
        response.status().code(),
        absl::StrCat(address.ToString(), ": ", response.status().message()));
    http_->CloseConnection();
  }
  return last;
}

absl::StatusOr<Position> LogClient::Append(absl::string_view data) {
  auto body = Write("/log/append", data);
  if (!body.ok()) return body.status();
  auto object = ParseJson(*body);
  if (!object.ok()) return object.status();
  auto position = NumberField(*object, "position");
  if (!position.ok()) return position.status();
  auto index = NumberField(*object, "index");
  if (!index.ok()) return index.status();
  return Position{*position, static_cast<uint32_t>(*index)};
}

absl::StatusOr<uint64_t> LogClient::Truncate(uint64_t to) {
  auto body = Write(absl::StrCat("/log/truncate?to=", to), "");
  if (!body.ok()) return body.status();
  auto object = ParseJson(*body);
  if (!object.ok()) return object.status();
  return NumberField(*object, "position");
}

absl::StatusOr<LogClient::ReadJsonResult> LogClient::ReadJson(
    std::optional<uint64_t> from, std::optional<uint64_t> to,
    std::optional<uint64_t> limit) {
  std::string target = "/log/read";
  char separator = '?';
  for (const auto& [name, value] :
       {std::pair<const char*, std::optional<uint64_t>>{"from", from},
        {"to", to},
        {"limit", limit}}) {
    if (!value.has_value()) continue;
    absl::StrAppend(&target, std::string(1, separator), name, "=", *value);
    separator = '&';
  }
  auto response = Get(target);
  if (!response.ok()) return response.status();
  if (response->status != 200) return ErrorFromResponse(*response);
  ReadJsonResult result;
  result.json = std::move(response->body);
  (void)absl::SimpleAtoi(response->headers.Get("X-Cairn-Next-Position"),
                         &result.next);
  return result;
}

absl::StatusOr<ReadPage> LogClient::Read(std::optional<uint64_t> from,
                                         std::optional<uint64_t> to,
                                         std::optional<uint64_t> limit) {
  auto raw = ReadJson(from, to, limit);
  if (!raw.ok()) return raw.status();
  auto list = ParseJson(raw->json);
  if (!list.ok()) return list.status();
  if (list->kind != Json::Kind::kArray) {
    return absl::InternalError("read answer is not a JSON array");
  }
  ReadPage page;
  page.next = raw->next;
  for (const Json& object : list->items) {
    if (object.kind != Json::Kind::kObject) {
      return absl::InternalError("read answer holds a non-object");
    }
    Entry entry;
    auto position = NumberField(object, "position");
    if (!position.ok()) return position.status();
    auto index = NumberField(object, "index");
    if (!index.ok()) return index.status();
    entry.position = *position;
    entry.index = static_cast<uint32_t>(*index);
    if (!absl::Base64Unescape(object.Field("data"), &entry.data)) {
      return absl::InternalError("read answer holds bad base64 data");
    }
    page.entries.push_back(std::move(entry));
  }
  return page;
}

absl::StatusOr<std::string> LogClient::StatusJson() {
  auto response = Get("/log/status");
  if (!response.ok()) return response.status();
  if (response->status != 200) return ErrorFromResponse(*response);
  return std::move(response->body);
}

}  // namespace cairn::log
