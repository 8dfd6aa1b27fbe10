#include "literal_set.h"

#include <algorithm>
#include <cstring>

namespace credwatch {

LiteralSet::LiteralSet(std::vector<std::string> literals) : literals_(std::move(literals)) {
  for (uint32_t i = 0; i < literals_.size(); i++) {
    std::string& l = literals_[i];
    for (char& c : l) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    if (l.empty()) {
      hasEmpty_ = true;
    } else if (l.size() == 1) {
      single_.set(static_cast<unsigned char>(l[0]));
    } else {
      const uint16_t p = Pair(static_cast<unsigned char>(l[0]), static_cast<unsigned char>(l[1]));
      pairs_.set(p);
      byPair_.emplace_back(p, i);
    }
  }
  std::sort(byPair_.begin(), byPair_.end());
}

bool LiteralSet::Contains(const char* s, size_t n) const {
  if (hasEmpty_) return true;
  if (literals_.empty()) return false;
  const auto* u = reinterpret_cast<const unsigned char*>(s);
  for (size_t i = 0; i < n; i++) {
    if (single_.test(u[i])) return true;
    if (i + 1 == n) break;
    const uint16_t p = Pair(u[i], u[i + 1]);
    if (!pairs_.test(p)) continue;
    auto it = std::lower_bound(byPair_.begin(), byPair_.end(), std::make_pair(p, uint32_t{0}));
    for (; it != byPair_.end() && it->first == p; ++it) {
      const std::string& l = literals_[it->second];
      if (l.size() <= n - i && std::memcmp(s + i, l.data(), l.size()) == 0) return true;
    }
  }
  return false;
}

}  // namespace credwatch
