using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Tests;

public class LayerTests : TorchTests
{
    [Fact]
    public void Conv_backward_uses_the_error_quantised_once_with_quantised_weights_and_activations()
    {
        // Exact, not approximate: the layer hands the very same quantised operands to the same native conv backward,
        // so dgrad and wgrad must match the reference bit for bit.
        var format = DfpFormat.SDfp(8, 2);
        using var conv = new QuantizedConv2d("conv", 8, 6, 3, stride: 2, padding: 1, config: QuantizationConfig.Uniform(format));
        using var x = Random(1, 2, 8, 9, 9).requires_grad_();
        using var y = conv.forward(x);
        using var g = Random(2, y.shape);
        y.backward([g]);
        Assert.Equal(1, conv.Quantizer(TensorRole.Error)!.Count);

        using var qa = Dfp.FakeQuantize(x.detach(), format).requires_grad_();
        using var qw = Dfp.FakeQuantize(conv.weight.detach(), format).requires_grad_();
        using var qg = Dfp.FakeQuantize(g, format);
        using var reference = nn.functional.conv2d(qa, qw, strides: [2, 2], padding: [1, 1]);
        reference.backward([qg]);

        AssertExactlyEqual(qa.grad!, x.grad!);
        AssertExactlyEqual(qw.grad!, conv.weight.grad!);
    }

    [Fact]
    public void Quantized_backward_gives_the_same_gradients_as_a_plain_backward()
    {
        var config = QuantizationConfig.Uniform(DfpFormat.SDfp(8, 1)) with { WeightGradient = DfpFormat.Dfp(8) };
        using var a = new QuantizedConv2d("a", 3, 4, 3, bias: true, config: config);
        using var b = new QuantizedConv2d("b", 3, 4, 3, bias: true, config: config);
        b.load_state_dict(a.state_dict());
        using var x = Random(1, 2, 3, 6, 6);
        using var x1 = x.clone().requires_grad_();
        using var x2 = x.clone().requires_grad_();
        using var g = Random(2, 2, 4, 4, 4);
        using (var l1 = (a.forward(x1) * g).sum())
            l1.backward();
        using (var l2 = (b.forward(x2) * g).sum())
            QuantizedBackward.Backward(l2);
        AssertExactlyEqual(x1.grad!, x2.grad!);
        AssertExactlyEqual(a.weight.grad!, b.weight.grad!);
        AssertExactlyEqual(a.bias!.grad!, b.bias!.grad!);
    }

    [Fact]
    public void Bias_gradient_is_the_sum_of_the_quantised_error()
    {
        var format = DfpFormat.Dfp(8);
        using var conv = new QuantizedConv2d("conv", 3, 4, 3, bias: true, config: QuantizationConfig.Uniform(format));
        using var x = Random(1, 2, 3, 5, 5);
        using var y = conv.forward(x);
        using var g = Random(2, y.shape);
        y.backward([g]);
        using var qg = Dfp.FakeQuantize(g, format);
        using var expected = qg.sum([0, 2, 3]);
        Assert.Equal(Values(expected), Values(conv.bias!.grad!), new FloatTolerance(1e-5f));
    }

    [Fact]
    public void Weight_gradient_role_quantises_what_the_optimizer_sees()
    {
        var format = DfpFormat.SDfp(8, 1);
        var wg = DfpFormat.Dfp(6);
        using var linear = new QuantizedLinear("fc", 10, 4, bias: false,
            config: QuantizationConfig.Uniform(format) with { WeightGradient = wg });
        using var x = Random(1, 5, 10);
        using var y = linear.forward(x);
        using var g = Random(2, y.shape);
        y.backward([g]);

        using var qa = Dfp.FakeQuantize(x, format);
        using var qg = Dfp.FakeQuantize(g, format);
        using var wgrad = qg.t().matmul(qa);
        using var expected = Dfp.FakeQuantize(wgrad, wg);
        AssertExactlyEqual(expected, linear.weight.grad!);
    }

    [Fact]
    public void Linear_accepts_batched_sequences_and_quantises_their_error_once()
    {
        var format = DfpFormat.SDfp(8, 1);
        using var linear = new QuantizedLinear("fc", 6, 5, config: QuantizationConfig.Uniform(format));
        using var x = Random(1, 2, 3, 6).requires_grad_();
        using var y = linear.forward(x);
        Assert.Equal(new long[] { 2, 3, 5 }, y.shape);
        using var g = Random(2, y.shape);
        y.backward([g]);
        Assert.Equal(1, linear.Quantizer(TensorRole.Error)!.Count);

        using var qa = Dfp.FakeQuantize(x.detach(), format).requires_grad_();
        using var qw = Dfp.FakeQuantize(linear.weight.detach(), format).requires_grad_();
        using var b = linear.bias!.detach().clone().requires_grad_();
        using var reference = nn.functional.linear(qa, qw, b);
        AssertExactlyEqual(reference, y);
        reference.backward([Dfp.FakeQuantize(g, format)]);
        AssertExactlyEqual(qa.grad!, x.grad!);
        AssertExactlyEqual(qw.grad!, linear.weight.grad!);
        AssertExactlyEqual(b.grad!, linear.bias!.grad!);
    }

    [Fact]
    public void Fp32_config_is_exactly_torch_conv2d()
    {
        using var conv = new QuantizedConv2d("conv", 4, 6, 3, padding: 1, bias: true);
        Assert.True(conv.Config.IsFp32);
        using var x = Random(1, 2, 4, 7, 7).requires_grad_();
        using var y = conv.forward(x);
        using var w = conv.weight.detach().clone().requires_grad_();
        using var b = conv.bias!.detach().clone().requires_grad_();
        using var x2 = x.detach().clone().requires_grad_();
        using var reference = nn.functional.conv2d(x2, w, b, padding: [1, 1]);
        AssertExactlyEqual(reference, y);
        using var g = Random(2, y.shape);
        y.backward([g]);
        reference.backward([g]);
        AssertExactlyEqual(x2.grad!, x.grad!);
        AssertExactlyEqual(w.grad!, conv.weight.grad!);
    }

    [Theory]
    [InlineData(TensorRole.Weight)]
    [InlineData(TensorRole.Activation)]
    [InlineData(TensorRole.Error)]
    public void A_role_switched_off_passes_its_tensor_through_unchanged(TensorRole fp32Role)
    {
        var format = DfpFormat.SDfp(4, 1); // coarse, so any quantisation would show
        var config = fp32Role switch
        {
            TensorRole.Weight => QuantizationConfig.Uniform(format) with { Weight = null },
            TensorRole.Activation => QuantizationConfig.Uniform(format) with { Activation = null },
            _ => QuantizationConfig.Uniform(format) with { Error = null },
        };
        using var conv = new QuantizedConv2d("conv", 3, 4, 3, config: config);
        Assert.Null(conv.Quantizer(fp32Role));
        using var x = Random(1, 2, 3, 6, 6).requires_grad_();
        using var y = conv.forward(x);
        using var g = Random(2, y.shape);
        y.backward([g]);

        using var a = (fp32Role == TensorRole.Activation ? x.detach().clone() : Dfp.FakeQuantize(x.detach(), format)).requires_grad_();
        using var w = (fp32Role == TensorRole.Weight ? conv.weight.detach().clone() : Dfp.FakeQuantize(conv.weight.detach(), format)).requires_grad_();
        using var e = fp32Role == TensorRole.Error ? g.clone() : Dfp.FakeQuantize(g, format);
        using var reference = nn.functional.conv2d(a, w);
        AssertExactlyEqual(reference, y);
        reference.backward([e]);
        AssertExactlyEqual(a.grad!, x.grad!);
        AssertExactlyEqual(w.grad!, conv.weight.grad!);
    }

    [Fact]
    public void Quantisation_applies_in_inference_without_building_a_graph()
    {
        var format = DfpFormat.SDfp(8, 1);
        using var conv = new QuantizedConv2d("conv", 3, 4, 3, config: QuantizationConfig.Uniform(format));
        conv.eval();
        using var x = Random(1, 1, 3, 5, 5);
        using var _ = no_grad();
        using var y = conv.forward(x);
        Assert.False(y.requires_grad);
        using var reference = nn.functional.conv2d(Dfp.FakeQuantize(x, format), Dfp.FakeQuantize(conv.weight, format));
        AssertExactlyEqual(reference, y);
    }

    [Fact]
    public void Output_may_be_modified_in_place_like_any_conv_output()
    {
        using var conv = new QuantizedConv2d("conv", 3, 4, 3, config: QuantizationConfig.Uniform(DfpFormat.Dfp(8)));
        using var x = Random(1, 2, 3, 6, 6).requires_grad_();
        using var y = conv.forward(x);
        y.relu_();
        y.sum().backward();
        Assert.NotNull(x.grad);
        Assert.Equal(1, conv.Quantizer(TensorRole.Error)!.Count);
    }

    [Fact]
    public void Parameters_have_torchvision_names_and_shapes()
    {
        using var conv = new QuantizedConv2d("layer1.0.conv1", 16, 32, 3, padding: 1);
        Assert.Equal(new[] { "weight" }, conv.named_parameters().Select(p => p.name));
        Assert.Equal(new long[] { 32, 16, 3, 3 }, conv.weight.shape);
        Assert.Equal("layer1.0.conv1", conv.LayerName);

        using var linear = new QuantizedLinear("fc", 64, 10);
        Assert.Equal(new[] { "weight", "bias" }, linear.named_parameters().Select(p => p.name));
        Assert.Equal(new long[] { 10, 64 }, linear.weight.shape);
        var bound = 1 / Math.Sqrt(64);
        Assert.All(Values(linear.weight), v => Assert.InRange(v, -bound, bound));
    }

    [Fact]
    public void Conv_weights_are_kaiming_normal_fan_out()
    {
        using var conv = new QuantizedConv2d("conv", 64, 64, 3);
        var w = Values(conv.weight);
        var std = Math.Sqrt(w.Average(v => (double)v * v));
        var expected = Math.Sqrt(2.0 / (64 * 9)); // gain √2 over fan_out = out·k·k
        Assert.InRange(std, expected * 0.97, expected * 1.03);
    }

    [Fact]
    public void Input_of_the_wrong_shape_is_reported_with_the_layer_name()
    {
        using var conv = new QuantizedConv2d("layer2.1.conv2", 8, 8, 3);
        using var x = zeros(1, 3, 5, 5);
        var e = Assert.Throws<ArgumentException>(() => conv.forward(x));
        Assert.Contains("layer2.1.conv2", e.Message);
        Assert.Contains("[1, 3, 5, 5]", e.Message);
    }

    [Fact]
    public void Changing_the_config_switches_the_layer_between_fp32_and_quantised()
    {
        using var conv = new QuantizedConv2d("conv", 3, 4, 3, config: QuantizationConfig.Uniform(DfpFormat.Dfp(4)));
        using var x = Random(1, 1, 3, 5, 5);
        using var quantised = conv.forward(x);
        conv.Config = QuantizationConfig.Fp32;
        using var fp32 = conv.forward(x);
        using var reference = nn.functional.conv2d(x, conv.weight);
        AssertExactlyEqual(reference, fp32);
        Assert.NotEqual(Values(reference), Values(quantised));
        Assert.Throws<ArgumentOutOfRangeException>(() => conv.Config = new QuantizationConfig { Weight = new DfpFormat { Bits = 1 } });
    }

    [Fact]
    public void Layers_report_every_role_to_telemetry()
    {
        var telemetry = new QuantizationTelemetry { Step = 3 };
        using var conv = new QuantizedConv2d("c1", 3, 4, 3, config: QuantizationConfig.Uniform(DfpFormat.SDfp(8, 1)) with { WeightGradient = DfpFormat.Dfp(8) }, telemetry: telemetry);
        using var x = Random(1, 2, 3, 6, 6);
        using var y = conv.forward(x);
        y.sum().backward();
        var latest = telemetry.Latest();
        Assert.Equal(new[] { TensorRole.Weight, TensorRole.Activation, TensorRole.Error, TensorRole.WeightGradient }, latest.Select(r => r.Role));
        Assert.All(latest, r => Assert.Equal("c1", r.Layer));
        Assert.All(latest, r => Assert.Equal(3, r.Step));
        Assert.All(latest.Take(3), r => Assert.Equal(1, r.Shift));
    }

    private sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance * Math.Max(1, Math.Abs(a));

        public int GetHashCode(float value) => 0;
    }
}
