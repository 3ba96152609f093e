#include "metrics.h"

#include <cstdio>

namespace inkstream {

namespace {
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}
}  // namespace

void Histogram::observe(double v) {
  std::lock_guard lock(mutex_);
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard lock(mutex_);
  header(out, name, "histogram", help);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  out += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

void Metrics::finished(const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++finished_[reason];
}

void Metrics::rejected(const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++rejected_[reason];
}

std::string Metrics::prometheus(double kv_usage) const {
  const std::string p = "inkstream:";
  std::string out;
  header(out, p + "num_requests_running", "gauge", "Requests generating now.");
  out += p + "num_requests_running " + std::to_string(running.load()) + "\n";
  header(out, p + "num_requests_waiting", "gauge", "Admitted requests waiting for a running slot.");
  out += p + "num_requests_waiting " + std::to_string(waiting.load()) + "\n";
  header(out, p + "kv_cache_usage_perc", "gauge", "Fraction of the KV cache budget in use (1 = full).");
  out += p + "kv_cache_usage_perc " + num(kv_usage) + "\n";
  header(out, p + "prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
  out += p + "prompt_tokens_total " + std::to_string(prompt_tokens.load()) + "\n";
  header(out, p + "generation_tokens_total", "counter", "Generated tokens.");
  out += p + "generation_tokens_total " + std::to_string(generation_tokens.load()) + "\n";
  header(out, p + "prefix_cache_queries", "counter", "Prompt tokens looked up in the prefix cache.");
  out += p + "prefix_cache_queries " + std::to_string(prefix_cache_queries.load()) + "\n";
  header(out, p + "prefix_cache_hits", "counter", "Prompt tokens found in the prefix cache.");
  out += p + "prefix_cache_hits " + std::to_string(prefix_cache_hits.load()) + "\n";
  {
    std::lock_guard lock(mutex_);
    header(out, p + "request_success_total", "counter", "Finished requests by finish reason.");
    for (const auto& [reason, n] : finished_) out += p + "request_success_total{finished_reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
    header(out, p + "admission_rejections_total", "counter", "Requests refused before they started, by reason.");
    for (const auto& [reason, n] : rejected_) out += p + "admission_rejections_total{reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  }
  ttft.write(out, p + "time_to_first_token_seconds", "Time from arrival to the first generated token.");
  inter_token.write(out, p + "inter_token_latency_seconds", "Time between a stream's tokens.");
  e2e.write(out, p + "e2e_request_latency_seconds", "Time from arrival to the end of a request.");
  queue_time.write(out, p + "request_queue_time_seconds", "Time a request waited for a running slot.");
  return out;
}

}  // namespace inkstream
