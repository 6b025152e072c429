#include "common/recordio.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn {
namespace recordio {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Seed from CAIRN_TEST_SEED (to replay a failure) or a fresh random one;
// printed either way.
uint32_t TestSeed() {
  const char* env = std::getenv("CAIRN_TEST_SEED");
  const uint32_t seed =
      env != nullptr ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10))
                     : std::random_device()();
  std::cout << "seed: " << seed << " (replay with CAIRN_TEST_SEED=" << seed
            << ")" << std::endl;
  return seed;
}

TEST(RecordIoEncodeTest, PrefixesDecimalLengthAndNewline) {
  EXPECT_EQ(Encode("hello"), "5\nhello");
  EXPECT_EQ(Encode(""), "0\n");
  EXPECT_EQ(Encode(std::string(12, 'x')), "12\n" + std::string(12, 'x'));
  std::string out = "3\nabc";
  AppendEncoded("de\nf", &out);
  EXPECT_EQ(out, "3\nabc4\nde\nf");
}

TEST(RecordIoDecoderTest, DecodesSeveralRecordsInOneChunk) {
  Decoder decoder;
  std::vector<std::string> records;
  ASSERT_TRUE(decoder.Feed("5\nhello3\nabc0\n2\n\n9", &records).ok());
  EXPECT_THAT(records, ElementsAre("hello", "abc", "", "\n9"));
  EXPECT_FALSE(decoder.HasPartialRecord());
}

TEST(RecordIoDecoderTest, KeepsExistingOutputElements) {
  Decoder decoder;
  std::vector<std::string> records = {"earlier"};
  ASSERT_TRUE(decoder.Feed("1\nx", &records).ok());
  EXPECT_THAT(records, ElementsAre("earlier", "x"));
}

TEST(RecordIoDecoderTest, ReassemblesRecordSplitByteByByte) {
  const std::string stream = Encode("{\"type\":\"HEARTBEAT\"}") + Encode("12");
  Decoder decoder;
  std::vector<std::string> records;
  for (char c : stream) {
    ASSERT_TRUE(decoder.Feed(absl::string_view(&c, 1), &records).ok());
  }
  EXPECT_THAT(records, ElementsAre("{\"type\":\"HEARTBEAT\"}", "12"));
}

TEST(RecordIoDecoderTest, ReportsPartialRecord) {
  Decoder decoder;
  std::vector<std::string> records;
  EXPECT_FALSE(decoder.HasPartialRecord());
  ASSERT_TRUE(decoder.Feed("1", &records).ok());
  EXPECT_TRUE(decoder.HasPartialRecord());
  ASSERT_TRUE(decoder.Feed("0\n01234", &records).ok());
  EXPECT_TRUE(decoder.HasPartialRecord());
  EXPECT_THAT(records, IsEmpty());
  ASSERT_TRUE(decoder.Feed("56789", &records).ok());
  EXPECT_FALSE(decoder.HasPartialRecord());
  EXPECT_THAT(records, ElementsAre("0123456789"));
  ASSERT_TRUE(decoder.Feed("", &records).ok());
  EXPECT_EQ(records.size(), 1u);
}

TEST(RecordIoDecoderTest, RejectsNonDigitLength) {
  Decoder decoder;
  std::vector<std::string> records;
  absl::Status status = decoder.Feed("2\nok1x\nz", &records);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("non-digit byte 'x'"));
  EXPECT_THAT(records, ElementsAre("ok"));  // completed before the bad byte
  EXPECT_TRUE(decoder.failed());
}

TEST(RecordIoDecoderTest, RejectsSignsAndWhitespaceInLength) {
  for (absl::string_view bad : {"-1\nx", "+1\nx", " 1\nx", "1 \nx", "1\r\nx"}) {
    Decoder decoder;
    std::vector<std::string> records;
    EXPECT_EQ(decoder.Feed(bad, &records).code(),
              absl::StatusCode::kInvalidArgument)
        << absl::CHexEscape(bad);
  }
}

TEST(RecordIoDecoderTest, RejectsEmptyLength) {
  Decoder decoder;
  std::vector<std::string> records;
  absl::Status status = decoder.Feed("\nabc", &records);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("empty length header"));
}

TEST(RecordIoDecoderTest, RejectsHeaderLongerThanTwentyDigitsAcrossChunks) {
  Decoder decoder;
  std::vector<std::string> records;
  ASSERT_TRUE(decoder.Feed(std::string(15, '0'), &records).ok());
  ASSERT_TRUE(decoder.Feed(std::string(5, '0'), &records).ok());  // 20 digits
  absl::Status status = decoder.Feed("0", &records);              // 21st
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("longer than 20 digits"));
}

TEST(RecordIoDecoderTest, AcceptsTwentyDigitHeaderWithLeadingZeros) {
  Decoder decoder;
  std::vector<std::string> records;
  ASSERT_TRUE(decoder.Feed(std::string(19, '0') + "3\nabc", &records).ok());
  EXPECT_THAT(records, ElementsAre("abc"));
}

TEST(RecordIoDecoderTest, RejectsLengthBeyondUint64) {
  Decoder decoder;
  std::vector<std::string> records;
  absl::Status status = decoder.Feed("99999999999999999999\n", &records);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("exceeds the maximum"));
}

TEST(RecordIoDecoderTest, EnforcesConfigurableMaxRecordSize) {
  Decoder decoder(/*max_record_size=*/10);
  EXPECT_EQ(decoder.max_record_size(), 10u);
  std::vector<std::string> records;
  ASSERT_TRUE(decoder.Feed(Encode("0123456789"), &records).ok());
  absl::Status status = decoder.Feed("11\n", &records);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("record length 11 exceeds the maximum record size 10"));
  EXPECT_THAT(records, ElementsAre("0123456789"));
}

TEST(RecordIoDecoderTest, DefaultMaxIs64MiB) {
  Decoder decoder;
  EXPECT_EQ(decoder.max_record_size(), 64u * 1024 * 1024);
  std::vector<std::string> records;
  // The header alone is rejected; no 64 MiB body needs to arrive.
  EXPECT_EQ(decoder.Feed("67108865\n", &records).code(),
            absl::StatusCode::kInvalidArgument);
  Decoder ok_decoder;
  EXPECT_TRUE(ok_decoder.Feed("67108864\n", &records).ok());
  EXPECT_TRUE(ok_decoder.HasPartialRecord());
}

TEST(RecordIoDecoderTest, StaysFailedAfterError) {
  Decoder decoder;
  std::vector<std::string> records;
  const absl::Status first = decoder.Feed("x", &records);
  ASSERT_EQ(first.code(), absl::StatusCode::kInvalidArgument);
  const absl::Status second = decoder.Feed("5\nhello", &records);
  EXPECT_EQ(second, first);
  EXPECT_TRUE(decoder.failed());
  EXPECT_FALSE(decoder.HasPartialRecord());
  EXPECT_THAT(records, IsEmpty());
}

TEST(RecordIoDecoderTest, RandomRecordsSurviveRandomChunking) {
  std::mt19937 rng(TestSeed());
  for (int round = 0; round < 50; ++round) {
    // Records of assorted sizes whose bytes include digits and newlines.
    std::vector<std::string> expected;
    std::string stream;
    const int count = static_cast<int>(rng() % 20);
    for (int i = 0; i < count; ++i) {
      const size_t size =
          (rng() % 4 == 0) ? rng() % 5000 : rng() % 20;  // mostly small
      std::string record(size, '\0');
      for (char& c : record) c = "0123456789\n\rab{}\""[rng() % 17];
      stream += Encode(record);
      expected.push_back(std::move(record));
    }
    // Cut the stream at random places, including empty chunks.
    Decoder decoder;
    std::vector<std::string> decoded;
    size_t pos = 0;
    while (pos < stream.size()) {
      const size_t max_chunk = (rng() % 2 == 0) ? 8 : 700;
      const size_t len =
          std::min<size_t>(rng() % max_chunk, stream.size() - pos);
      ASSERT_TRUE(
          decoder.Feed(absl::string_view(stream).substr(pos, len), &decoded)
              .ok())
          << "round " << round << " pos " << pos;
      pos += len;
    }
    EXPECT_FALSE(decoder.HasPartialRecord()) << "round " << round;
    ASSERT_EQ(decoded, expected) << "round " << round;
  }
}

}  // namespace
}  // namespace recordio
}  // namespace cairn
