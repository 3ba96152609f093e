#include "inkstream/model_runtime/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "inkstream/model_runtime/errors.h"
#include "test_support.h"

namespace inkstream {
namespace {

std::string header_file(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + json + data;
}

std::string error_of(const std::filesystem::path& p) {
  try {
    SafetensorsFile::open(p);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, WriteThenReadRoundTrips) {
  const auto dir = test::temp_dir("st");
  const float a[6] = {1, 2, 3, 4, 5, 6};
  const std::uint16_t b[2] = {0x3F80, 0x4000};
  write_safetensors(dir / "x.safetensors", {{"a", StoredDtype::F32, {2, 3}, a, sizeof a}, {"b", StoredDtype::BF16, {2}, b, sizeof b}},
                    {{"format", "pt"}});
  const SafetensorsFile f = SafetensorsFile::open(dir / "x.safetensors");
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorEntry& ta = f.tensors().at("a");
  EXPECT_EQ(ta.dtype, StoredDtype::F32);
  EXPECT_EQ(ta.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(ta.data, a, sizeof a), 0);
  EXPECT_EQ(f.tensors().at("b").nbytes, 4u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  std::filesystem::remove_all(dir);
}

TEST(Safetensors, EveryCorruptionHasItsOwnError) {
  const auto dir = test::temp_dir("stbad");
  const std::string eight(8, '\0');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "too small"},
      {std::string("\xff\xff\xff\xff\x00\x00\x00\x00", 8), "100 MB"},
      {header_file("{}", "").substr(0, 8) + "{", "past the end"},
      {header_file("{\"a\":", ""), "not valid JSON"},
      {header_file("[]", ""), "not a JSON object"},
      {header_file(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", "x"), "unknown dtype"},
      {header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"), "out of range"},
      {header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "1234"), "size mismatch"},
      {header_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})", "12345678"), "overlaps"},
      {header_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "12345678"), "gap"},
      {header_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "12345678"), "trailing bytes"},
      {header_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})", "1234"), "overflows"},
      {header_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "1234"), "negative"},
      {header_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "1234"), "begin > end"},
      {header_file(R"({"a":{"dtype":"F32","shape":[1]}})", "1234"), "data_offsets"},
      {header_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "1234"), ""},  // the valid control
  };
  int i = 0;
  for (const auto& [bytes, expected] : cases) {
    const auto p = dir / ("case" + std::to_string(i++) + ".safetensors");
    test::write_file(p, bytes);
    const std::string err = error_of(p);
    if (expected.empty()) {
      EXPECT_EQ(err, "");
    } else {
      EXPECT_NE(err.find(expected), std::string::npos) << "case " << i - 1 << ": got '" << err << "'";
      EXPECT_NE(err.find(p.string()), std::string::npos) << "error must name the file: " << err;
    }
  }
  EXPECT_NE(error_of(dir / "absent.safetensors").find("cannot open"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace inkstream
