#include "cli/table.h"

#include <algorithm>
#include <utility>

namespace cairn::cli {
namespace {

std::string Clean(absl::string_view cell) {
  std::string out(cell);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

}  // namespace

size_t DisplayWidth(absl::string_view text) {
  size_t width = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++width;
  }
  return width;
}

std::string Truncate(absl::string_view text, size_t max) {
  if (DisplayWidth(text) <= max) return std::string(text);
  if (max <= 3) return std::string(max, '.');
  size_t kept = 0;
  size_t i = 0;
  for (; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (kept == max - 3) break;
      ++kept;
    }
  }
  return std::string(text.substr(0, i)) + "...";
}

Table::Table(std::vector<std::string> header) {
  for (std::string& cell : header) cell = Clean(cell);
  rows_.push_back(std::move(header));
}

void Table::AddRow(std::vector<std::string> cells) {
  for (std::string& cell : cells) cell = Clean(cell);
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  size_t columns = 0;
  for (const auto& row : rows_) columns = std::max(columns, row.size());
  std::vector<size_t> widths(columns, 0);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < columns; ++i) {
      const std::string empty;
      const std::string& cell = i < row.size() ? row[i] : empty;
      line += cell;
      if (i + 1 < columns) {
        line.append(widths[i] - DisplayWidth(cell) + 2, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace cairn::cli
