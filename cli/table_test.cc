#include "cli/table.h"

#include "gtest/gtest.h"

namespace cairn::cli {
namespace {

TEST(TableTest, AlignsColumnsWithoutTrailingBlanks) {
  Table table({"ID", "HOSTNAME", "STATE"});
  table.AddRow({"a1", "host-long-name", "active"});
  table.AddRow({"agent-22", "h", "draining"});
  EXPECT_EQ(table.Render(),
            "ID        HOSTNAME        STATE\n"
            "a1        host-long-name  active\n"
            "agent-22  h               draining\n");
}

TEST(TableTest, ShortRowsArePaddedAndEmptyLastCellsLeaveNoBlanks) {
  Table table({"A", "B", "C"});
  table.AddRow({"x"});
  EXPECT_EQ(table.Render(), "A  B  C\nx\n");
}

TEST(TableTest, ControlCharactersStayOnOneLine) {
  Table table({"MESSAGE"});
  table.AddRow({"line one\nline\ttwo"});
  EXPECT_EQ(table.Render(), "MESSAGE\nline one line two\n");
}

TEST(TableTest, WidthCountsCodePoints) {
  Table table({"N", "X"});
  table.AddRow({"\xc3\xa9t\xc3\xa9", "1"});  // "été": 3 code points
  table.AddRow({"abcd", "2"});
  EXPECT_EQ(table.Render(),
            "N     X\n"
            "\xc3\xa9t\xc3\xa9   1\n"
            "abcd  2\n");
}

TEST(TableTest, TruncateMarksCutText) {
  EXPECT_EQ(Truncate("short", 10), "short");
  EXPECT_EQ(Truncate("a long summary", 8), "a lon...");
  EXPECT_EQ(DisplayWidth(Truncate("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 4)), 4u);
}

}  // namespace
}  // namespace cairn::cli
