using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Tests;

/// <summary>
/// The one-pass current exponent (quantise with the stream's last exponent, measure amax in the same pass, quantise
/// again on a miss) must give exactly the bits of the two-pass path (amax scan, then quantise).
/// </summary>
public class OnePassExponentTests : TorchTests
{
    // Scales that keep, raise and lower the exponent between steps, so that both hits and misses happen.
    private static readonly double[] Scales = [1, 1.05, 0.97, 9, 9.2, 0.01, 0.011, 300, 1, 1];

    [Theory]
    [InlineData("S-DFP8(s=1)")]
    [InlineData("S-DFP8(s=2,stochastic)")]
    [InlineData("DFP6")]
    public void One_pass_fake_quantisation_is_bit_identical_to_two_passes(string name)
    {
        var format = DfpFormat.Parse(name);
        var telemetryOne = new QuantizationTelemetry();
        var telemetryTwo = new QuantizationTelemetry();
        using var onePass = new TensorQuantizer("l", TensorRole.Error, format, telemetryOne, seed: 7);
        using var twoPass = new TensorQuantizer("l", TensorRole.Error, format, telemetryTwo, seed: 7);
        var exponents = new List<int>();
        for (var step = 0; step < Scales.Length; step++)
        {
            using var x = Random(step, 3, 40, 33) * Scales[step]; // odd size: the scalar tail runs too
            using var one = onePass.FakeQuantize(x);
            using var two = TwoPass(() => twoPass.FakeQuantize(x));
            AssertSameBits(two, one);
            Assert.Equal(twoPass.LastExponent, onePass.LastExponent);
            Assert.Equal(twoPass.LastAmax, onePass.LastAmax);
            exponents.Add(onePass.LastExponent);
        }
        Assert.True(exponents.Distinct().Count() >= 4, "the stream must change exponent, so that guesses miss");
        Assert.Equal(twoPass.AmaxHistory, onePass.AmaxHistory);
        Assert.Equal(telemetryTwo.Records.Select(r => (r.Exponent, r.SaturatedFraction, r.FlushedToZeroFraction, r.SqnrDb)),
            telemetryOne.Records.Select(r => (r.Exponent, r.SaturatedFraction, r.FlushedToZeroFraction, r.SqnrDb)));
    }

    [Fact]
    public void One_pass_integer_quantisation_is_bit_identical_to_two_passes()
    {
        var format = DfpFormat.SDfp(8, 1) with { Rounding = Formats.RoundingMode.Stochastic };
        using var onePass = new TensorQuantizer("l", TensorRole.Activation, format, seed: 3);
        using var twoPass = new TensorQuantizer("l", TensorRole.Activation, format, seed: 3);
        for (var step = 0; step < Scales.Length; step++)
        {
            using var x = Random(100 + step, 1000) * Scales[step];
            using var one = onePass.Quantize(x);
            using var two = TwoPass(() => twoPass.Quantize(x));
            Assert.Equal(two.Exponent, one.Exponent);
            Assert.Equal(Longs(two.Integers), Longs(one.Integers));
        }
    }

    [Fact]
    public void One_pass_refuses_nan_found_while_quantising_and_keeps_its_history()
    {
        var telemetry = new QuantizationTelemetry();
        using var quantizer = new TensorQuantizer("fc", TensorRole.Error, DfpFormat.SDfp(8, 1), telemetry);
        using var good = Random(1, 100);
        using var _ = quantizer.FakeQuantize(good);
        using var bad = Random(2, 100);
        bad[17] = tensor(float.PositiveInfinity);
        var e = Assert.Throws<NonFiniteTensorException>(() => quantizer.FakeQuantize(bad));
        Assert.Equal(("fc", TensorRole.Error, 1L), (e.Layer, e.Role, e.NonFiniteCount));
        Assert.Equal(1, telemetry.Records[^1].NonFiniteCount);
        Assert.Single(quantizer.AmaxHistory);
        Assert.Equal(1, quantizer.Count);
    }

    [Fact]
    public void Conv_training_steps_are_bit_identical_with_one_and_two_passes()
    {
        var config = QuantizationConfig.Uniform(DfpFormat.SDfp(8, 1)) with { Seed = 5 };
        var (outputsOne, gradientsOne) = Train(config, twoPass: false);
        var (outputsTwo, gradientsTwo) = Train(config, twoPass: true);
        for (var i = 0; i < outputsOne.Count; i++)
        {
            Assert.Equal(outputsTwo[i], outputsOne[i]);
            Assert.Equal(gradientsTwo[i], gradientsOne[i]);
        }
    }

    private static (List<int[]> Outputs, List<int[]> Gradients) Train(QuantizationConfig config, bool twoPass)
    {
        var saved = TensorQuantizer.GuessExponent;
        TensorQuantizer.GuessExponent = !twoPass;
        try
        {
            manual_seed(11);
            using var conv = new QuantizedConv2d("conv", 8, 8, 3, padding: 1, config: config);
            var outputs = new List<int[]>();
            var gradients = new List<int[]>();
            for (var step = 0; step < 4; step++)
            {
                using var scope = NewDisposeScope();
                conv.zero_grad();
                var x = Random(20 + step, 2, 8, 9, 9) * Scales[step + 2];
                var y = conv.call(x);
                var loss = (y * y).sum() * Scales[step];
                QuantizedBackward.Backward(loss);
                outputs.Add(Bits(y));
                gradients.Add(Bits(conv.weight.grad!));
            }
            return (outputs, gradients);
        }
        finally
        {
            TensorQuantizer.GuessExponent = saved;
        }
    }

    private static T TwoPass<T>(Func<T> quantize)
    {
        var saved = TensorQuantizer.GuessExponent;
        TensorQuantizer.GuessExponent = false;
        try
        {
            return quantize();
        }
        finally
        {
            TensorQuantizer.GuessExponent = saved;
        }
    }

    private static int[] Bits(Tensor t) => Values(t).Select(BitConverter.SingleToInt32Bits).ToArray();

    private static void AssertSameBits(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(Bits(expected), Bits(actual));
    }
}
