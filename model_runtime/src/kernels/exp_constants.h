#pragma once
// The constants of the kernels' e^x (attention_tiles.h's exp_softmax): Cephes'
// expf. x = n·ln2 + r with n = round(x·log2 e) and ln2 split in two so that
// n·ln2_hi is exact; e^r ≈ 1 + r + r²·p(r) on |r| <= ln2/2 (~1 ulp).
namespace inkstream::kernels {
namespace {

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
// Below this e^x is under FLT_MIN (n would leave the normal exponents): 0.
constexpr float kExpLow = -87.33654f;
constexpr float kExpP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                            5.0000001201e-1f};

}  // namespace
}  // namespace inkstream::kernels
