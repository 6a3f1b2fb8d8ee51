using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Tests;

public class StreamTests : TorchTests
{
    [Fact]
    public void Delayed_exponent_uses_the_maximum_of_the_amax_history()
    {
        var format = DfpFormat.Dfp(8) with { ExponentSource = ExponentSource.Delayed, HistoryLength = 3 };
        using var quantizer = new TensorQuantizer("l", TensorRole.Activation, format);
        float[] amaxes = [1f, 8f, 2f, 0.5f, 0.25f, 0.25f];
        var exponents = new List<int>();
        foreach (var amax in amaxes)
        {
            using var x = tensor(new[] { amax, -amax / 3 });
            using var _ = quantizer.FakeQuantize(x);
            exponents.Add(quantizer.LastExponent);
        }
        // Step 0 has no history and uses its own amax; step k uses max(amax[k-3..k-1]).
        double[] reference = [1, 1, 8, 8, 8, 2];
        Assert.Equal(reference.Select(a => Dfp.Exponent(a, format, 0)), exponents);
        Assert.Equal(new double[] { 0.5, 0.25, 0.25 }, quantizer.AmaxHistory);
    }

    [Fact]
    public void Delayed_exponent_saturates_when_the_tensor_outgrows_its_history()
    {
        var format = DfpFormat.Dfp(8) with { ExponentSource = ExponentSource.Delayed };
        var telemetry = new QuantizationTelemetry();
        using var quantizer = new TensorQuantizer("l", TensorRole.Error, format, telemetry);
        using var small = tensor(new[] { 1f, 0.5f });
        using var big = tensor(new[] { 4f, 0.5f });
        using var a = quantizer.FakeQuantize(small);
        using var b = quantizer.FakeQuantize(big);
        Assert.Equal(0.5, telemetry.Records[^1].SaturatedFraction);
        Assert.Equal(127f / 64, Values(b)[0]); // clamped to qmax at the exponent of amax 1
    }

    [Fact]
    public void Delayed_exponent_still_refuses_nan_found_while_quantising()
    {
        var format = DfpFormat.Dfp(8) with { ExponentSource = ExponentSource.Delayed };
        var telemetry = new QuantizationTelemetry();
        using var quantizer = new TensorQuantizer("fc", TensorRole.Error, format, telemetry);
        using var good = Random(1, 100);
        using var _ = quantizer.FakeQuantize(good);
        using var bad = Random(2, 100);
        bad[17] = tensor(float.NaN);
        var e = Assert.Throws<NonFiniteTensorException>(() => quantizer.FakeQuantize(bad));
        Assert.Equal(("fc", TensorRole.Error, 1L), (e.Layer, e.Role, e.NonFiniteCount));
        Assert.Equal(1, telemetry.Records[^1].NonFiniteCount);
        Assert.Single(quantizer.AmaxHistory); // the failed step leaves the history alone
    }

    [Fact]
    public void Nan_or_inf_throws_naming_layer_and_role_and_is_counted_in_telemetry()
    {
        var telemetry = new QuantizationTelemetry { Step = 17 };
        using var quantizer = new TensorQuantizer("layer1.0.conv1", TensorRole.Activation, DfpFormat.Dfp(8), telemetry);
        using var x = tensor(new[] { 1f, float.NaN, float.PositiveInfinity, 2f, float.NegativeInfinity });
        var e = Assert.Throws<NonFiniteTensorException>(() => quantizer.FakeQuantize(x));
        Assert.Equal("layer1.0.conv1", e.Layer);
        Assert.Equal(TensorRole.Activation, e.Role);
        Assert.Equal(3, e.NonFiniteCount);
        Assert.StartsWith("Layer 'layer1.0.conv1' role Activation: tensor contains 3 NaN/Inf values", e.Message);
        Assert.Contains("step 17", e.Message);
        Assert.Equal(3, telemetry.Records[^1].NonFiniteCount);

        // The stateless API refuses too.
        var stateless = Assert.Throws<ArgumentException>(() => Dfp.FakeQuantize(x, DfpFormat.Dfp(8)));
        Assert.Contains("3 NaN/Inf", stateless.Message);
    }

    [Fact]
    public void Nan_in_the_backward_error_surfaces_as_a_clear_exception_naming_layer_and_role()
    {
        using var conv = new QuantizedConv2d("layer3.1.conv2", 2, 3, 3, config: QuantizationConfig.Uniform(DfpFormat.Dfp(8)));
        using var x = Random(1, 1, 2, 5, 5).requires_grad_();
        using var y = conv.forward(x);
        using var g = ones_like(y);
        g[0, 1, 1, 1] = tensor(float.NaN);
        using var loss = (y * g).sum();
        var e = Assert.Throws<NonFiniteTensorException>(() => QuantizedBackward.Backward(loss));
        Assert.Equal("layer3.1.conv2", e.Layer);
        Assert.Equal(TensorRole.Error, e.Role);
        Assert.Equal(1, e.NonFiniteCount);
        Assert.Contains("Layer 'layer3.1.conv2' role Error", e.Message);
        Assert.Null(conv.weight.grad is { } grad && grad.numel() > 0 && Values(grad).Any(float.IsNaN) ? "NaN reached the weights" : null);
    }

    [Fact]
    public void Nan_in_a_layer_input_is_reported_in_forward_with_layer_and_role()
    {
        using var linear = new QuantizedLinear("head.fc", 4, 2, config: QuantizationConfig.Uniform(DfpFormat.Dfp(8)));
        using var x = tensor(new[,] { { 1f, float.PositiveInfinity, 0f, 2f } }).requires_grad_();
        var e = Assert.Throws<NonFiniteTensorException>(() => linear.forward(x));
        Assert.Equal(("head.fc", TensorRole.Activation, 1L), (e.Layer, e.Role, e.NonFiniteCount));
        using (no_grad())
            linear.weight[0, 0] = tensor(float.NaN);
        using var finite = ones(1, 4);
        var w = Assert.Throws<NonFiniteTensorException>(() => linear.forward(finite));
        Assert.Equal(("head.fc", TensorRole.Weight), (w.Layer, w.Role));
    }

    [Fact]
    public void A_plain_backward_that_hit_nan_fails_and_the_next_forward_names_the_layer()
    {
        using var conv = new QuantizedConv2d("conv9", 2, 3, 3, config: QuantizationConfig.Uniform(DfpFormat.Dfp(8)));
        using var x = Random(1, 1, 2, 5, 5).requires_grad_();
        using var y = conv.forward(x);
        using var g = full_like(y, float.NaN);
        using var loss = (y * g).sum();
        Assert.ThrowsAny<Exception>(() => loss.backward()); // libtorch's own error; the process survives
        var e = Assert.Throws<NonFiniteTensorException>(() => conv.forward(x));
        Assert.Equal(("conv9", TensorRole.Error), (e.Layer, e.Role));
        using var again = conv.forward(x); // reported once, then the layer works again
    }

    /// <summary>Laplace-distributed values, heavy-tailed like errors: the largest value is far above the bulk.</summary>
    private static Tensor Laplace(ulong seed, int n)
    {
        using var generator = new Generator(seed);
        using var scope = NewDisposeScope();
        var magnitude = rand(n, generator: generator).log_().neg_();
        return magnitude.mul_(randn(n, generator: generator).sign()).MoveToOuterDisposeScope();
    }

    [Fact]
    public void Auto_shift_picks_a_candidate_close_to_the_least_error()
    {
        using var x = Laplace(4, 20_000);
        var telemetry = new QuantizationTelemetry();
        var format = DfpFormat.Auto(4) with { AutoShiftMax = 6 };
        using var auto = new TensorQuantizer("l", TensorRole.Error, format, telemetry);
        using var autoResult = auto.FakeQuantize(x);
        var chosen = auto.LastShift;

        var mse = new double[7];
        for (var s = 0; s <= 6; s++)
        {
            using var q = Dfp.FakeQuantize(x, DfpFormat.SDfp(4, s));
            using var d = (q - x).square().mean();
            mse[s] = d.item<float>();
        }
        Assert.True(mse[0] > 3 * mse.Min(), "precondition: plain DFP4 is far from optimal on heavy-tailed data");
        // The choice is made on a 4,096-element sample, so allow sampling noise: within 1.5× of the full-tensor optimum.
        Assert.True(mse[chosen] <= 1.5 * mse.Min(), $"chose s={chosen} with MSE {mse[chosen]}, best {mse.Min()}");
        Assert.Equal(chosen, telemetry.Records[^1].Shift);
        Assert.Equal(Dfp.Exponent(auto.LastAmax, format, chosen), auto.LastExponent);
    }

    [Fact]
    public void Stateless_quantisation_applies_auto_shift_too()
    {
        using var x = Laplace(4, 20_000);
        var format = DfpFormat.Auto(4) with { AutoShiftMax = 6 };
        using var quantizer = new TensorQuantizer("l", TensorRole.Error, format);
        using var expected = quantizer.FakeQuantize(x);
        using var actual = Dfp.FakeQuantize(x, format);
        Assert.True(quantizer.LastShift > 0);
        AssertExactlyEqual(expected, actual);
    }

    [Fact]
    public void Auto_shift_respects_the_saturation_cap()
    {
        using var x = Laplace(5, 20_000);
        var format = DfpFormat.Auto(4) with { AutoShiftMax = 6, MaxSaturatedFraction = 0.0 };
        using var capped = new TensorQuantizer("l", TensorRole.Activation, format);
        using var _ = capped.FakeQuantize(x);
        Assert.Equal(0, capped.LastShift); // any positive shift saturates at least the maximum
        using var free = new TensorQuantizer("l", TensorRole.Activation, format with { MaxSaturatedFraction = null });
        using var __ = free.FakeQuantize(x);
        Assert.True(free.LastShift > 0);
        using var loose = new TensorQuantizer("l", TensorRole.Activation, format with { MaxSaturatedFraction = 0.5 });
        using var ___ = loose.FakeQuantize(x);
        Assert.Equal(free.LastShift, loose.LastShift);
    }

    [Fact]
    public void Auto_shift_samples_every_pixel_position_of_an_activation_not_one_per_plane()
    {
        // [256, 16, 28, 28] has numel / 4096 = 28·28: a fixed stride would see one pixel position only.
        using var position = arange(28 * 28, dtype: ScalarType.Float32).reshape(1, 1, 28, 28);
        using var x = position.expand(256, 16, 28, 28).contiguous();

        var sample = AutoShift.Sample(x, TensorQuantizer.AutoShiftSampleSize);

        Assert.Equal(TensorQuantizer.AutoShiftSampleSize, sample.Length);
        Assert.True(sample.Distinct().Count() > 700, $"the sample covers only {sample.Distinct().Count()} of 784 pixel positions");
    }
}
