#include "common/json_value.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cairn {
namespace {

class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text) {}

  // The whole text as one value; nullopt if it is not valid JSON.
  std::optional<JsonValue> ParseDocument() {
    std::optional<JsonValue> value = ParseValue(0);
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

  std::optional<JsonValue> ParseValue(int depth) {
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
        std::optional<std::string> key = ParseString();
        if (!key.has_value() || !Consume(':')) return std::nullopt;
        std::optional<JsonValue> field = ParseValue(depth + 1);
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
        std::optional<JsonValue> item = ParseValue(depth + 1);
        if (!item.has_value()) return std::nullopt;
        value.items.push_back(*std::move(item));
      } while (Consume(','));
      if (!Consume(']')) return std::nullopt;
      return value;
    }
    if (c == '"') {
      std::optional<std::string> s = ParseString();
      if (!s.has_value()) return std::nullopt;
      value.kind = JsonValue::Kind::kString;
      value.text = *std::move(s);
      return value;
    }
    for (absl::string_view word : {"true", "false"}) {
      if (ConsumeWord(word)) {
        value.kind = JsonValue::Kind::kBool;
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
    value.kind = JsonValue::Kind::kNumber;
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
  std::optional<JsonValue> value = Parser(text).ParseDocument();
  if (!value.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not JSON: ", text.substr(0, 200), text.size() > 200 ? "..." : ""));
  }
  return *std::move(value);
}

}  // namespace cairn
