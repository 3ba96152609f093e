// Stop strings on streamed text: the one definition the engine and the
// remote client share.
#include "inkstream/model_runtime/stop_strings.h"

#include <gtest/gtest.h>

namespace inkstream {
namespace {

constexpr auto npos = std::string_view::npos;

TEST(StopStrings, FindsTheEarliestStopEndingAfterTheCheckedText) {
  const std::vector<std::string> stops = {"\n\n", "THE END"};
  EXPECT_EQ(find_stop("one\n\ntwo", stops, 0), 3u);
  EXPECT_EQ(find_stop("one\n\ntwo", stops, 4), 3u) << "a stop straddling the checked text still counts";
  EXPECT_EQ(find_stop("one\n\ntwo", stops, 5), npos) << "one that ended inside the checked text was seen before";
  EXPECT_EQ(find_stop("so THE END\n\n", stops, 6), 3u) << "the earliest of several";
  EXPECT_EQ(find_stop("THE EN", stops, 0), npos);
  EXPECT_EQ(find_stop("abc", {""}, 0), npos) << "an empty stop string matches nothing";
  EXPECT_EQ(find_stop("", stops, 0), npos);
}

TEST(StopStrings, HoldsBackTheLongestSuffixThatMayBecomeAStop) {
  const std::vector<std::string> stops = {"\n\n", "THE END"};
  EXPECT_EQ(stop_prefix_length("so THE E", stops), 5u);
  EXPECT_EQ(stop_prefix_length("line\n", stops), 1u);
  EXPECT_EQ(stop_prefix_length("THE END", stops), 0u) << "a whole stop string is found, not held back";
  EXPECT_EQ(stop_prefix_length("plain", stops), 0u);
  EXPECT_EQ(stop_prefix_length("", stops), 0u);
  EXPECT_EQ(stop_prefix_length("x", {""}), 0u);
}

}  // namespace
}  // namespace inkstream
