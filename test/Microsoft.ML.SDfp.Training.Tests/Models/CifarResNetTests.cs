using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using Xunit;

namespace Microsoft.ML.SDfp.Training.Tests.Models;

public sealed class CifarResNetTests
{
    public CifarResNetTests() => TorchSharpRuntime.EnsureLoaded();

    [Theory]
    [InlineData(ResNetArchitecture.ResNet20, 3)]
    [InlineData(ResNetArchitecture.ResNet32, 5)]
    [InlineData(ResNetArchitecture.ResNet56, 9)]
    public void Depth_is_6n_plus_2_with_two_projection_shortcuts(ResNetArchitecture architecture, int n)
    {
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = architecture });

        var convs = model.QuantizedConvs.ToList();
        var projections = convs.Where(c => c.LayerName.Contains(".downsample.", StringComparison.Ordinal)).ToList();
        // 6n + 1 convs on the main path + 1 classifier = 6n + 2 weighted layers (20, 32, 56).
        Assert.Equal(6 * n + 1, convs.Count - projections.Count);
        Assert.Equal(6 * n + 2, convs.Count - projections.Count + model.QuantizedLinears.Count());
        Assert.Equal(new[] { "layer2.0.downsample.0", "layer3.0.downsample.0" }, projections.Select(p => p.LayerName));
        Assert.Equal(n, ((CifarResNet)model).BlocksPerStageCount);
        foreach (var stage in new[] { "layer1", "layer2", "layer3" })
            Assert.Equal(n, model.named_modules().Count(m => m.name.StartsWith(stage + ".", StringComparison.Ordinal) && m.name.Count(ch => ch == '.') == 1));
        Assert.DoesNotContain(model.named_children(), c => c.name == "layer4");
        Assert.DoesNotContain(model.named_children(), c => c.name == "maxpool");
    }

    [Fact]
    public void Stage_widths_are_16_32_64_and_the_stem_is_a_3x3_conv()
    {
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet20, InputChannels = 1 });
        var state = model.state_dict();

        Assert.Equal(new long[] { 16, 1, 3, 3 }, state["conv1.weight"].shape);
        Assert.Equal(new long[] { 16, 16, 3, 3 }, state["layer1.2.conv2.weight"].shape);
        Assert.Equal(new long[] { 32, 16, 3, 3 }, state["layer2.0.conv1.weight"].shape);
        Assert.Equal(new long[] { 32, 16, 1, 1 }, state["layer2.0.downsample.0.weight"].shape);
        Assert.Equal(new long[] { 64, 64, 3, 3 }, state["layer3.2.conv2.weight"].shape);
        Assert.Equal(new long[] { 10, 64 }, state["fc.weight"].shape);
    }

    [Fact]
    public void ResNet20_has_272474_parameters_with_projection_shortcuts()
    {
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet20, NumClasses = 10 });

        static long Conv(long cin, long cout, long k) => cin * cout * k * k;
        static long Bn(long c) => 2 * c;
        static long Block(long cin, long cout) =>
            Conv(cin, cout, 3) + Bn(cout) + Conv(cout, cout, 3) + Bn(cout) + (cin != cout ? Conv(cin, cout, 1) + Bn(cout) : 0);
        long expected = Conv(3, 16, 3) + Bn(16)
            + 3 * Block(16, 16)
            + Block(16, 32) + 2 * Block(32, 32)
            + Block(32, 64) + 2 * Block(64, 64)
            + (64 * 10 + 10);

        long actual = model.ParameterCount;

        Assert.Equal(272_474, expected);
        Assert.Equal(expected, actual);
    }
}
