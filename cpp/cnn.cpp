// The `cnn` policy's population forward; see cnn.hpp for what is computed and why.
#include "cnn.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace smevo::rollout {

CnnForward::CnnForward(CnnSpec spec) : spec_(std::move(spec)) {
  int height = spec_.height, width = spec_.width, channels = spec_.channels;
  std::size_t offset = 1;  // after the flag
  auto add = [&](int in_h, int in_w, int out_h, int out_w, int out_c, int kernel, int stride,
                 int padding, Activation activation) {
    const std::size_t weights = static_cast<std::size_t>(kernel) * kernel * channels * out_c;
    layers_.push_back(Layer{in_h, in_w, channels, out_h, out_w, out_c, kernel, stride, padding,
                            activation, offset, offset + weights});
    offset += weights + static_cast<std::size_t>(out_c);
  };
  for (const ConvSpec& conv : spec_.convs) {
    const int padded_h = height + 2 * conv.padding, padded_w = width + 2 * conv.padding;
    const int out_h = (padded_h - conv.kernel) / conv.stride + 1;
    const int out_w = (padded_w - conv.kernel) / conv.stride + 1;
    if (padded_h < conv.kernel || padded_w < conv.kernel) {
      throw std::invalid_argument("the convolutions shrink the " + std::to_string(spec_.height) +
                                  "x" + std::to_string(spec_.width) + " frame to nothing");
    }
    add(padded_h, padded_w, out_h, out_w, conv.channels, conv.kernel, conv.stride,
        conv.padding, spec_.activation);
    height = out_h, width = out_w, channels = conv.channels;
  }
  // The Linear layers read their whole input at one position: [1, 1, features].
  channels = height * width * channels;
  add(1, 1, 1, 1, spec_.hidden, 1, 1, 0, spec_.activation);
  channels = spec_.hidden;
  add(1, 1, 1, 1, spec_.outputs, 1, 1, 0, spec_.output);
  // Where each of torch's flattened [C, H, W] inputs of the hidden layer sits in [H, W, C].
  const Layer& last = layers_[spec_.convs.size() - 1];
  for (int c = 0; c < last.out_c; ++c)
    for (int y = 0; y < last.out_h; ++y)
      for (int x = 0; x < last.out_w; ++x)
        hidden_rows_.push_back((y * last.out_w + x) * last.out_c + c);
  num_params_ = offset - 1;
  std::size_t widest = 0;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    widest = std::max(widest, static_cast<std::size_t>(layer.in_h) * layer.in_w * layer.in_c);
    const int pad = next_padding(l);
    widest = std::max(widest, static_cast<std::size_t>(layer.out_h + 2 * pad) *
                                  (layer.out_w + 2 * pad) * layer.out_c);
  }
  a_.assign(widest, 0.0);
  b_.assign(widest, 0.0);
}

int CnnForward::next_padding(std::size_t l) const {
  return l + 1 < layers_.size() ? layers_[l + 1].padding : 0;
}

std::size_t CnnForward::input_size() const {
  return static_cast<std::size_t>(spec_.height) * spec_.width * spec_.channels;
}

void CnnForward::prepare(const float* genome, float* prepared) const {
  bool finite = true;
  for (std::size_t i = 0; i < num_params_; ++i) finite = finite && std::isfinite(genome[i]);
  prepared[0] = finite ? 1.0f : 0.0f;
  const float* w = genome;
  const std::size_t convs = spec_.convs.size();
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    const int k = layer.kernel, in_c = layer.in_c, out_c = layer.out_c;
    float* to = prepared + layer.weights;
    if (l < convs) {  // torch: [out][in][ky][kx] -> [ky][kx][in][out]
      for (int o = 0; o < out_c; ++o)
        for (int c = 0; c < in_c; ++c)
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx)
              to[((static_cast<std::size_t>(ky) * k + kx) * in_c + c) * out_c + o] = *w++;
    } else {  // torch: [out][in] -> [in][out], inputs in [H, W, C] order (torch's [C, H, W])
      // In tiles, so that both sides' cache lines are used whole: the hidden layer's weights
      // are most of a genome, and every rollout lays out its genomes anew.
      const bool hidden = l == convs;
      constexpr int kTile = 16;
      for (int o0 = 0; o0 < out_c; o0 += kTile) {
        for (int j0 = 0; j0 < in_c; j0 += kTile) {
          for (int o = o0; o < std::min(o0 + kTile, out_c); ++o) {
            for (int j = j0; j < std::min(j0 + kTile, in_c); ++j) {
              to[static_cast<std::size_t>(hidden ? hidden_rows_[j] : j) * out_c + o] =
                  w[static_cast<std::size_t>(o) * in_c + j];
            }
          }
        }
      }
      w += static_cast<std::size_t>(out_c) * in_c;
    }
    std::copy(w, w + out_c, prepared + layer.bias);
    w += out_c;
  }
}

namespace {

// Adds to `sums` (B outputs) the products of inputs `x[i]` with their weight rows: input i's
// weights for these outputs start at `w + i * stride`. Each output's sum takes its products
// in the order of the inputs, whatever B (B outputs at a time only keeps their sums in
// registers).
template <int B>
inline void accumulate(const double* x, int count, const float* w, std::size_t stride,
                       double* sums) {
  double acc[B];
  for (int b = 0; b < B; ++b) acc[b] = sums[b];
  for (int i = 0; i < count; ++i) {
    const double v = x[i];
    const float* row = w + static_cast<std::size_t>(i) * stride;
    for (int b = 0; b < B; ++b) acc[b] += v * static_cast<double>(row[b]);
  }
  for (int b = 0; b < B; ++b) sums[b] = acc[b];
}

// `accumulate` for every output of a layer with `outputs` of them, in blocks of 16, 8 and 1.
inline void accumulate_blocks(const double* x, int count, const float* w, int outputs,
                              double* sums) {
  int o = 0;
  for (; o + 16 <= outputs; o += 16) accumulate<16>(x, count, w + o, outputs, sums + o);
  for (; o + 8 <= outputs; o += 8) accumulate<8>(x, count, w + o, outputs, sums + o);
  for (; o < outputs; ++o) accumulate<1>(x, count, w + o, outputs, sums + o);
}

#if defined(__GNUC__) && defined(__x86_64__)
// The same, built for AVX2 and taken where the CPU has it: the vector lanes are independent
// outputs and nothing is fused (-ffp-contract=off), so both builds compute the same bits.
__attribute__((target("avx2"))) void accumulate_blocks_avx2(const double* x, int count,
                                                              const float* w, int outputs,
                                                              double* sums) {
  accumulate_blocks(x, count, w, outputs, sums);
}

const bool kAvx2 = __builtin_cpu_supports("avx2");

void accumulate_all(const double* x, int count, const float* w, int outputs, double* sums) {
  if (kAvx2) {
    accumulate_blocks_avx2(x, count, w, outputs, sums);
  } else {
    accumulate_blocks(x, count, w, outputs, sums);
  }
}
#else
void accumulate_all(const double* x, int count, const float* w, int outputs, double* sums) {
  accumulate_blocks(x, count, w, outputs, sums);
}
#endif

void finish(Activation activation, const float* bias, int outputs, double* sums) {
  for (int o = 0; o < outputs; ++o) sums[o] = activate(activation, sums[o] + bias[o]);
}

}  // namespace

// Each output sums its window's products in the window's order (kernel rows, each k * in_c
// contiguous inputs), then adds the bias and activates.
void CnnForward::convolve(const Layer& layer, const float* prepared, const double* in,
                          double* out, int out_padding, int out_w_padded) const {
  const int k = layer.kernel, in_c = layer.in_c, out_c = layer.out_c;
  const int span = k * in_c;  // one kernel row
  const std::size_t row_stride = static_cast<std::size_t>(layer.in_w) * in_c;
  const float* weights = prepared + layer.weights;
  for (int oy = 0; oy < layer.out_h; ++oy) {
    for (int ox = 0; ox < layer.out_w; ++ox) {
      double* sums = out + ((static_cast<std::size_t>(oy) + out_padding) * out_w_padded + ox +
                            out_padding) * out_c;
      const double* window = in + static_cast<std::size_t>(oy) * layer.stride * row_stride +
                             static_cast<std::size_t>(ox) * layer.stride * in_c;
      std::fill(sums, sums + out_c, 0.0);
      for (int ky = 0; ky < k; ++ky) {
        accumulate_all(window + ky * row_stride, span,
                       weights + static_cast<std::size_t>(ky) * span * out_c, out_c, sums);
      }
      finish(layer.activation, prepared + layer.bias, out_c, sums);
    }
  }
}

// Each output sums its products with the nonzero inputs in order (a zero input adds +-0, which
// leaves the sum as it is, unless a weight is not finite: then every input counts), then adds
// the bias and activates. A zero input's weight row is never read: the hidden layer's weights
// are most of a genome, and ReLU zeroes about half of its inputs.
void CnnForward::linear(const Layer& layer, const float* prepared, bool finite, const double* in,
                        double* out) const {
  const int out_c = layer.out_c;
  std::fill(out, out + out_c, 0.0);
  const float* weights = prepared + layer.weights;
  int start = 0;  // runs of counted inputs, each accumulated at once
  while (start < layer.in_c) {
    while (start < layer.in_c && finite && in[start] == 0.0) ++start;
    int end = start;
    while (end < layer.in_c && (!finite || in[end] != 0.0)) ++end;
    accumulate_all(in + start, end - start, weights + static_cast<std::size_t>(start) * out_c,
                   out_c, out);
    start = end;
  }
  finish(layer.activation, prepared + layer.bias, out_c, out);
}

void CnnForward::operator()(const float* prepared, std::size_t episodes, std::size_t rows,
                            const double* inputs, const std::uint8_t* active, float* outputs) {
  const std::size_t frame = input_size();
  const int h = spec_.height, w = spec_.width, channels = spec_.channels;
  const int outputs_per_row = spec_.outputs;
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = outputs + r * outputs_per_row;
    if (!active[r]) {
      std::fill(row, row + outputs_per_row, 0.0f);
      continue;
    }
    const float* genome = prepared + (r / episodes) * (num_params_ + 1);
    const bool finite = genome[0] != 0.0f;
    const double* input = inputs + r * frame;
    // The frame, scaled, into [H, W, C] with the first layer's zero padding around it.
    const int pad = layers_[0].padding, padded_w = w + 2 * pad;
    std::fill(a_.begin(), a_.begin() + static_cast<std::ptrdiff_t>(layers_[0].in_h) *
                                           layers_[0].in_w * layers_[0].in_c, 0.0);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < channels; ++c) {
          const std::size_t from = spec_.channels_last
                                       ? (static_cast<std::size_t>(y) * w + x) * channels + c
                                       : (static_cast<std::size_t>(c) * h + y) * w + x;
          a_[((static_cast<std::size_t>(y) + pad) * padded_w + x + pad) * channels + c] =
              input[from] * spec_.scale;
        }
    double* in = a_.data();
    double* out = b_.data();
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Layer& layer = layers_[l];
      const int next_pad = next_padding(l);
      const int out_w_padded = layer.out_w + 2 * next_pad;
      if (next_pad) {
        std::fill(out, out + static_cast<std::ptrdiff_t>(layer.out_h + 2 * next_pad) *
                                 out_w_padded * layer.out_c, 0.0);
      }
      if (l < spec_.convs.size()) {
        convolve(layer, genome, in, out, next_pad, out_w_padded);
      } else {
        linear(layer, genome, finite, in, out);
      }
      std::swap(in, out);
    }
    for (int k = 0; k < outputs_per_row; ++k) row[k] = static_cast<float>(in[k]);
  }
}

}  // namespace smevo::rollout
