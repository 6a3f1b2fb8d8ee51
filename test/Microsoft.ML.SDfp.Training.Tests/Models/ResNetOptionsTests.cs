using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Models;
using Xunit;

namespace Microsoft.ML.SDfp.Training.Tests.Models;

public sealed class ResNetOptionsTests
{
    public ResNetOptionsTests() => TorchSharpRuntime.EnsureLoaded();

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    [InlineData(-3)]
    public void Fewer_than_two_classes_is_rejected_naming_NumClasses_and_the_value(int classes)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => ResNetFactory.Create(new ResNetOptions { NumClasses = classes }));

        Assert.Equal("NumClasses", ex.ParamName);
        Assert.Contains($"got {classes}", ex.Message);
    }

    [Fact]
    public void Zero_input_channels_is_rejected_naming_InputChannels()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => ResNetFactory.Create(new ResNetOptions { InputChannels = 0 }));

        Assert.Equal("InputChannels", ex.ParamName);
        Assert.Contains("got 0", ex.Message);
    }

    [Fact]
    public void Unknown_architecture_is_rejected_naming_Architecture()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ResNetFactory.Create(new ResNetOptions { Architecture = (ResNetArchitecture)99 }));

        Assert.Equal("Architecture", ex.ParamName);
        Assert.Contains("99", ex.Message);
    }

    [Fact]
    public void Invalid_format_in_the_policy_is_rejected_naming_the_role_and_property()
    {
        var policy = QuantizationPolicy.Body(QuantizationConfig.Uniform(DfpFormat.Dfp(8)) with
        {
            Error = new DfpFormat { Bits = 1 },
        });

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => ResNetFactory.Create(new ResNetOptions { Quantization = policy }));

        Assert.Contains("Error", ex.ParamName);
        Assert.Contains("Bits", ex.ParamName);
        Assert.Contains("QuantizationPolicy.Layers", ex.Message);
    }

    [Fact]
    public void Cifar_architectures_are_recognised_as_such()
    {
        Assert.True(ResNetFactory.IsCifarStyle(ResNetArchitecture.ResNet56));
        Assert.False(ResNetFactory.IsCifarStyle(ResNetArchitecture.ResNet18));
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet32, SmallImageStem = true });
        Assert.IsType<CifarResNet>(model);
    }
}
