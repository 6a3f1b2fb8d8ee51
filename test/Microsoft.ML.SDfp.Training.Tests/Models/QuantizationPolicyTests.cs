using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using Xunit;

namespace Microsoft.ML.SDfp.Training.Tests.Models;

public sealed class QuantizationPolicyTests
{
    private static readonly QuantizationConfig Sdfp8 = QuantizationConfig.Uniform(DfpFormat.SDfp(8, 1));
    private static readonly QuantizationConfig Dfp4 = QuantizationConfig.Uniform(DfpFormat.Dfp(4));

    public QuantizationPolicyTests() => TorchSharpRuntime.EnsureLoaded();

    [Fact]
    public void Default_policy_leaves_every_layer_fp32()
    {
        using var model = ResNetFactory.Create(new ResNetOptions());

        Assert.All(model.QuantizedConvs, c => Assert.True(c.Config.IsFp32, c.LayerName));
        Assert.All(model.QuantizedLinears, l => Assert.True(l.Config.IsFp32, l.LayerName));
    }

    [Fact]
    public void Body_policy_quantises_every_body_conv_and_keeps_stem_and_classifier_fp32()
    {
        using var model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = ResNetArchitecture.ResNet18, Quantization = QuantizationPolicy.Body(Sdfp8),
        });

        var convs = model.QuantizedConvs.ToList();
        Assert.Equal("conv1", convs[0].LayerName);
        Assert.True(convs[0].Config.IsFp32);
        Assert.All(convs.Skip(1), c => Assert.Equal(Sdfp8, c.Config));
        Assert.Contains(convs, c => c.LayerName == "layer2.0.downsample.0");
        Assert.True(model.Classifier.Config.IsFp32);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void First_conv_and_last_linear_are_quantised_only_when_chosen(bool firstConv, bool lastLinear)
    {
        using var model = ResNetFactory.Create(new ResNetOptions
        {
            Quantization = new QuantizationPolicy { Layers = Sdfp8, QuantizeFirstConv = firstConv, QuantizeLastLinear = lastLinear },
        });

        var stem = model.QuantizedConvs.Single(c => c.LayerName == "conv1");
        Assert.Equal(firstConv ? Sdfp8 : QuantizationConfig.Fp32, stem.Config);
        Assert.Equal(lastLinear ? Sdfp8 : QuantizationConfig.Fp32, model.Classifier.Config);
        Assert.Equal(Sdfp8, model.QuantizedConvs.Single(c => c.LayerName == "layer3.2.conv2").Config);
    }

    [Fact]
    public void SetQuantization_switches_an_existing_model_and_back_without_touching_weights()
    {
        torch.manual_seed(5);
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet20, InputChannels = 1 });
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var input = torch.randn(4, 1, 28, 28);
        var fp32 = model.call(input);

        model.SetQuantization(QuantizationPolicy.All(Dfp4));
        var quantised = model.call(input);
        Assert.Equal(QuantizationPolicy.All(Dfp4), model.Options.Quantization);
        Assert.All(model.QuantizedConvs, c => Assert.Equal(Dfp4, c.Config));
        Assert.Equal(Dfp4, model.Classifier.Config);
        Assert.False(torch.allclose(fp32, quantised), "4-bit DFP should change the logits");

        model.SetQuantization(QuantizationPolicy.Fp32);
        Assert.True(fp32.Equals(model.call(input)), "switching back to FP32 restores the FP32 logits");
        Assert.Equal(QuantizationPolicy.Fp32, model.Options.Quantization);
    }

    [Fact]
    public void Every_layer_is_named_by_its_state_dict_prefix_in_state_dict_order()
    {
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet50, NumClasses = 3 });

        var weightKeys = model.state_dict().Keys
            .Where(k => k.EndsWith(".weight", StringComparison.Ordinal) && model.state_dict()[k].dim() >= 2)
            .Select(k => k[..^".weight".Length]);
        var layerNames = model.QuantizedConvs.Select(c => c.LayerName).Concat(model.QuantizedLinears.Select(l => l.LayerName));

        Assert.Equal(weightKeys, layerNames);
    }

    [Fact]
    public void Telemetry_is_pushed_to_every_layer_and_records_by_layer_name()
    {
        using var model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = ResNetArchitecture.ResNet20, InputChannels = 1, Quantization = QuantizationPolicy.Body(Sdfp8),
        });
        var telemetry = new QuantizationTelemetry();

        model.Telemetry = telemetry;
        Assert.All(model.QuantizedConvs, c => Assert.Same(telemetry, c.Telemetry));
        Assert.Same(telemetry, model.Classifier.Telemetry);

        using (var scope = torch.NewDisposeScope())
            model.call(torch.randn(2, 1, 28, 28)).sum().backward();

        var layers = telemetry.Latest().Select(r => r.Layer).ToHashSet();
        Assert.Contains("layer1.0.conv1", layers);
        Assert.Contains("layer3.0.downsample.0", layers);
        Assert.DoesNotContain("conv1", layers);   // FP32 stem records nothing
        Assert.DoesNotContain("fc", layers);
        Assert.Contains(telemetry.Latest(), r => r.Layer == "layer2.1.conv2" && r.Role == TensorRole.Error);

        model.Telemetry = null;
        Assert.All(model.QuantizedConvs, c => Assert.Null(c.Telemetry));
    }

    [Theory]
    [InlineData(ResNetArchitecture.ResNet50)]
    [InlineData(ResNetArchitecture.ResNet18)]
    [InlineData(ResNetArchitecture.ResNet20)]
    public void Fully_quantised_training_step_gives_every_parameter_a_finite_gradient(ResNetArchitecture architecture)
    {
        torch.manual_seed(9);
        using var model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = architecture, InputChannels = 1, NumClasses = 10, Quantization = QuantizationPolicy.All(Sdfp8),
        });
        model.train();
        using var scope = torch.NewDisposeScope();
        var input = torch.randn(2, 1, 28, 28);
        var labels = torch.tensor(new long[] { 3, 9 });

        var loss = torch.nn.functional.cross_entropy(model.call(input), labels);
        loss.backward();

        Assert.True(float.IsFinite(loss.ToSingle()));
        foreach (var (name, parameter) in model.named_parameters())
        {
            Assert.True(parameter.grad is not null, $"{name} has no gradient");
            Assert.True(torch.isfinite(parameter.grad!).all().ToBoolean(), $"{name} has a non-finite gradient");
        }
        Assert.NotEqual(0f, model.QuantizedConvs.First(c => c.LayerName == "layer1.0.conv1").weight.grad!.abs().sum().ToSingle());
    }
}
