// A set of literals searched for in a text, ASCII case-insensitively: the triage's "could a rule's
// literal be in this command line / socket path / file name" test, once per audited event, and
// replay's "could the redactor change this text" words (native/replay_events.cc). 45 memmem()
// calls per exec (one per literal of the default rules) were the reader thread's largest user-space
// cost; this scans the text once, and only positions whose first two bytes begin some literal are
// compared. Built once per spec; Contains() allocates nothing and is linear in the text for a given set.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace credwatch {

class LiteralSet {
 public:
  LiteralSet() = default;
  // Literals are lower-cased here (ASCII), so Contains() takes lower-cased text.
  explicit LiteralSet(std::vector<std::string> literals);

  bool empty() const { return literals_.empty(); }
  // True when some literal occurs in [s, s + n), which must already be ASCII-lower-cased. The empty
  // literal occurs in every text.
  bool Contains(const char* s, size_t n) const;
  bool Contains(std::string_view s) const { return Contains(s.data(), s.size()); }

 private:
  static uint16_t Pair(unsigned char a, unsigned char b) { return static_cast<uint16_t>((a << 8) | b); }

  std::vector<std::string> literals_;
  bool hasEmpty_ = false;
  std::bitset<256> single_;  // one-byte literals
  std::bitset<65536> pairs_;  // the first two bytes of every longer literal
  // (first two bytes, literal index), sorted: the literals to compare where a pair matches.
  std::vector<std::pair<uint16_t, uint32_t>> byPair_;
};

}  // namespace credwatch
