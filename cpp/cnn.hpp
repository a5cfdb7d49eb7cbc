// The `cnn` policy's population forward in C++, for smevo's lockstep loop on the CPU.
//
// A step of a MinAtar population is 64 small networks on 10x10 frames: torch spent most of
// it in per-genome convolution calls and in reading every genome's float64 head weights.
// Here each genome is laid out once per rollout (`prepare`) in its own float32 (the genome's
// dtype, so the float64 arithmetic is unchanged and a step reads half the bytes), each
// layer's weights as [input][output] with inputs in the [H, W, C] order the activations are
// kept in: one input updates a block of outputs whose sums stay in registers, and a Linear
// layer skips the inputs that ReLU zeroed (half the hidden layer's, whose weights are most
// of a genome). Sums run in a fixed order, in double, and outputs are
// rounded to float32, as in smevo/evaluation/rollout.py's other forwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "rollout.hpp"

namespace smevo::rollout {

// One convolution: output channels, square kernel, stride, zero padding.
struct ConvSpec {
  int channels = 1, kernel = 1, stride = 1, padding = 0;
};

// smevo's `cnn` policy: convolutions, each followed by `activation`; their output flattened
// in (C, H, W) order; a hidden Linear layer with `activation`; an output Linear layer with
// `output`. Frames are [H, W, C] when `channels_last`, else [C, H, W]; each input value is
// multiplied by `scale` (1/255 for uint8 pixels).
struct CnnSpec {
  int height = 1, width = 1, channels = 1;
  bool channels_last = true;
  double scale = 1.0;
  std::vector<ConvSpec> convs;
  int hidden = 1, outputs = 1;
  Activation activation = Activation::kRelu;
  Activation output = Activation::kLinear;
};

class CnnForward {
 public:
  // std::invalid_argument where the convolutions shrink the frame to nothing.
  explicit CnnForward(CnnSpec spec);

  const CnnSpec& spec() const { return spec_; }
  std::size_t num_params() const { return num_params_; }         // torch's genome length
  std::size_t prepared_size() const { return num_params_ + 1; }  // `prepare`'s row length
  std::size_t input_size() const;                                 // values in one frame

  // One genome in torch's parameter order (each layer's weight, then its bias) -> the layout
  // the forward reads: a flag (1 if every weight is finite), then per layer its weights
  // (a convolution's kernel as [ky][kx][in][out]; a Linear layer's as [in][out], the hidden
  // layer's inputs in [H, W, C] order where torch flattens [C, H, W]) and its bias.
  void prepare(const float* genome, float* prepared) const;

  // Row r of `inputs` [rows, frame] is applied to prepared genome r / episodes of `prepared`
  // [G, prepared_size]; outputs [rows, outputs] are rounded to float32, zeros where
  // `active[r]` is 0.
  void operator()(const float* prepared, std::size_t episodes, std::size_t rows,
                  const double* inputs, const std::uint8_t* active, float* outputs);

 private:
  // A layer as the forward runs it: an output grid of `out_h` x `out_w` positions (1 x 1 for
  // a Linear layer), each reading a k x k window (the whole input for a Linear layer) of a
  // [in_h, in_w, in_c] input, zero-padded by `padding` on each side (included in in_h, in_w).
  struct Layer {
    int in_h, in_w, in_c, out_h, out_w, out_c, kernel, stride, padding;
    Activation activation;
    std::size_t weights;  // offset of the weights in a prepared genome
    std::size_t bias;     // offset of the bias
  };

  void convolve(const Layer& layer, const float* prepared, const double* in, double* out,
                int out_padding, int out_w_padded) const;
  void linear(const Layer& layer, const float* prepared, bool finite, const double* in,
              double* out) const;
  int next_padding(std::size_t l) const;  // the padding of layer l's output: the next's input

  CnnSpec spec_;
  std::vector<Layer> layers_;
  // For each input of the hidden layer, in torch's [C, H, W] order, its row here ([H, W, C]).
  std::vector<int> hidden_rows_;
  std::size_t num_params_ = 0;
  std::vector<double> a_, b_;  // a row's activations between layers
};

}  // namespace smevo::rollout
