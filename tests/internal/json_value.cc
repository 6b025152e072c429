#include "tests/internal/json_value.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cairn::tests {
namespace {

class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text) {}

  std::optional<JsonValue> Document() {
    std::optional<JsonValue> value = Value(0);
    SkipSpace();
    if (!value.has_value() || pos_ != text_.size()) return std::nullopt;
    return value;
  }

 private:
  static constexpr int kMaxDepth = 32;

  void SkipSpace() {
    while (pos_ < text_.size() &&
           absl::ascii_isspace(static_cast<unsigned char>(text_[pos_]))) {
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
  bool Word(absl::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  std::optional<JsonValue> Value(int depth) {
    if (depth > kMaxDepth) return std::nullopt;
    SkipSpace();
    if (pos_ >= text_.size()) return std::nullopt;
    JsonValue value;
    const char c = text_[pos_];
    if (c == '{') {
      ++pos_;
      value.kind = JsonValue::Kind::kObject;
      if (Consume('}')) return value;
      do {
        SkipSpace();
        std::optional<std::string> key = String();
        if (!key.has_value() || !Consume(':')) return std::nullopt;
        std::optional<JsonValue> field = Value(depth + 1);
        if (!field.has_value()) return std::nullopt;
        value.fields.emplace_back(*std::move(key), *std::move(field));
      } while (Consume(','));
      if (!Consume('}')) return std::nullopt;
      return value;
    }
    if (c == '[') {
      ++pos_;
      value.kind = JsonValue::Kind::kArray;
      if (Consume(']')) return value;
      do {
        std::optional<JsonValue> item = Value(depth + 1);
        if (!item.has_value()) return std::nullopt;
        value.items.push_back(*std::move(item));
      } while (Consume(','));
      if (!Consume(']')) return std::nullopt;
      return value;
    }
    if (c == '"') {
      std::optional<std::string> s = String();
      if (!s.has_value()) return std::nullopt;
      value.kind = JsonValue::Kind::kString;
      value.text = *std::move(s);
      return value;
    }
    if (Word("true") || Word("false")) {
      value.kind = JsonValue::Kind::kBool;
      value.text = c == 't' ? "true" : "false";
      return value;
    }
    if (Word("null")) return value;
    const size_t start = pos_;
    while (pos_ < text_.size() &&
           (absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_])) ||
            text_[pos_] == '-' || text_[pos_] == '+' || text_[pos_] == '.' ||
            text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
    }
    if (pos_ == start) return std::nullopt;
    value.kind = JsonValue::Kind::kNumber;
    value.text = std::string(text_.substr(start, pos_ - start));
    return value;
  }

  // A string literal at pos_. \uXXXX escapes outside ASCII become '?': the
  // log API only escapes control characters.
  std::optional<std::string> String() {
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
          if (pos_ + 4 > text_.size()) return std::nullopt;
          uint32_t code = 0;
          if (!absl::SimpleHexAtoi(text_.substr(pos_, 4), &code)) {
            return std::nullopt;
          }
          pos_ += 4;
          out += code < 0x80 ? static_cast<char>(code) : '?';
          break;
        }
        default:  // '"', '\\', '/'
          out += e;
      }
    }
    return std::nullopt;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

const JsonValue* JsonValue::Find(absl::string_view name) const {
  for (const auto& [key, value] : fields) {
    if (key == name) return &value;
  }
  return nullptr;
}

std::optional<std::string> JsonValue::Text(absl::string_view name) const {
  const JsonValue* value = Find(name);
  if (value == nullptr || value->kind == Kind::kNull ||
      value->kind == Kind::kArray || value->kind == Kind::kObject) {
    return std::nullopt;
  }
  return value->text;
}

std::optional<uint64_t> JsonValue::Uint(absl::string_view name) const {
  const JsonValue* value = Find(name);
  uint64_t n = 0;
  if (value == nullptr ||
      (value->kind != Kind::kNumber && value->kind != Kind::kString) ||
      !absl::SimpleAtoi(value->text, &n)) {
    return std::nullopt;
  }
  return n;
}

std::optional<bool> JsonValue::Bool(absl::string_view name) const {
  const JsonValue* value = Find(name);
  if (value == nullptr || value->kind != Kind::kBool) return std::nullopt;
  return value->text == "true";
}

absl::StatusOr<JsonValue> ParseJson(absl::string_view text) {
  std::optional<JsonValue> value = Parser(text).Document();
  if (!value.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not JSON: ", text.substr(0, 200), text.size() > 200 ? "..." : ""));
  }
  return *std::move(value);
}

}  // namespace cairn::tests
