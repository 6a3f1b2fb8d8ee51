using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Tests.Models;

public sealed class ResNetShapeTests
{
    public ResNetShapeTests() => TorchSharpRuntime.EnsureLoaded();

    public static TheoryData<ResNetArchitecture, int> ArchitecturesAndChannels()
    {
        var data = new TheoryData<ResNetArchitecture, int>();
        foreach (var architecture in Enum.GetValues<ResNetArchitecture>())
        {
            data.Add(architecture, 1);
            data.Add(architecture, 3);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ArchitecturesAndChannels))]
    public void Logits_and_features_have_the_documented_shapes_for_28_and_32_pixel_inputs(ResNetArchitecture architecture, int channels)
    {
        using var model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = architecture, InputChannels = channels, NumClasses = 7,
        });
        model.eval();
        long expectedEmbedding = architecture switch
        {
            ResNetArchitecture.ResNet18 or ResNetArchitecture.ResNet34 => 512,
            ResNetArchitecture.ResNet50 or ResNetArchitecture.ResNet101 or ResNetArchitecture.ResNet152 => 2048,
            _ => 64,
        };
        Assert.Equal(expectedEmbedding, model.EmbeddingSize);

        using var noGrad = torch.no_grad();
        foreach (int size in new[] { 28, 32 })
        {
            using var scope = torch.NewDisposeScope();
            var input = torch.randn(2, channels, size, size);

            var logits = model.call(input);
            var features = model.Features(input);

            Assert.Equal(new long[] { 2, 7 }, logits.shape);
            Assert.Equal(new long[] { 2, model.EmbeddingSize }, features.shape);
            Assert.True(torch.isfinite(logits).all().ToBoolean());
        }
    }

    [Theory]
    [InlineData(ResNetArchitecture.ResNet20, false)]
    [InlineData(ResNetArchitecture.ResNet18, true)]
    [InlineData(ResNetArchitecture.ResNet50, false)]
    public void Non_square_and_larger_inputs_pool_to_the_same_embedding(ResNetArchitecture architecture, bool smallStem)
    {
        using var model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = architecture, InputChannels = 3, NumClasses = 4, SmallImageStem = smallStem,
        });
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();

        Assert.Equal(new long[] { 1, model.EmbeddingSize }, model.Features(torch.randn(1, 3, 30, 45)).shape);
        Assert.Equal(new long[] { 1, 4 }, model.call(torch.randn(1, 3, 64, 64)).shape);
    }

    [Fact]
    public void Forward_is_the_classifier_applied_to_the_features()
    {
        torch.manual_seed(11);
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet20 });
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var input = torch.randn(3, 3, 32, 32);

        var logits = model.call(input);
        var viaFeatures = model.Classifier.call(model.Features(input));

        Assert.True(logits.Equals(viaFeatures));
    }

    [Fact]
    public void Small_image_stem_is_a_3x3_stride_1_conv_without_max_pool_and_keeps_resolution()
    {
        using var scope = torch.NewDisposeScope();
        using var standard = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet18, InputChannels = 1 });
        using var small = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = ResNetArchitecture.ResNet18, InputChannels = 1, SmallImageStem = true,
        });

        Assert.Equal(new long[] { 64, 1, 7, 7 }, standard.state_dict()["conv1.weight"].shape);
        Assert.Equal(new long[] { 64, 1, 3, 3 }, small.state_dict()["conv1.weight"].shape);
        Assert.Contains(standard.named_modules(), m => m.name == "maxpool");
        Assert.DoesNotContain(small.named_modules(), m => m.name == "maxpool");
        // Only the stem differs: every other tensor has the same name and shape.
        Assert.Equal(standard.state_dict().Keys.Order(), small.state_dict().Keys.Order());

        // 28×28 through layer1 stays 28×28 with the small stem, and is 7×7 with the ImageNet stem.
        using var noGrad = torch.no_grad();
        var input = torch.randn(1, 1, 28, 28);
        Assert.Equal(new long[] { 1, 64, 28, 28 }, StemAndFirstStage(small, input).shape);
        Assert.Equal(new long[] { 1, 64, 7, 7 }, StemAndFirstStage(standard, input).shape);
    }

    [Fact]
    public void Input_with_the_wrong_channel_count_is_rejected_with_the_expected_shape()
    {
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet20, InputChannels = 1 });

        var ex = Assert.Throws<ArgumentException>(() => model.call(torch.zeros(2, 3, 28, 28)));

        Assert.Contains("[N, 1, H, W]", ex.Message);
        Assert.Contains("[2, 3, 28, 28]", ex.Message);
    }

    [Fact]
    public void Zero_init_residual_zeroes_the_last_norm_scale_of_every_block_only_when_asked()
    {
        using var scope = torch.NewDisposeScope();
        using var plain = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet50, NumClasses = 2 });
        using var zeroed = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = ResNetArchitecture.ResNet50, NumClasses = 2, ZeroInitResidual = true,
        });

        var zeroedState = zeroed.state_dict();
        Assert.Equal(0f, zeroedState["layer1.0.bn3.weight"].abs().sum().ToSingle());
        Assert.Equal(0f, zeroedState["layer4.2.bn3.weight"].abs().sum().ToSingle());
        Assert.Equal(64f, zeroedState["layer1.0.bn1.weight"].sum().ToSingle());
        Assert.Equal(256f, plain.state_dict()["layer1.0.bn3.weight"].sum().ToSingle());
    }

    private static Tensor StemAndFirstStage(nn.Module model, Tensor input)
    {
        var children = model.named_children().ToDictionary(c => c.name, c => (nn.Module<Tensor, Tensor>)c.module);
        var x = children["relu"].call(children["bn1"].call(children["conv1"].call(input)));
        if (children.TryGetValue("maxpool", out var pool))
            x = pool.call(x);
        return children["layer1"].call(x);
    }
}
