using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Tests.Models;

/// <summary>Our ImageNet ResNets against the TorchVision 0.107.0 package's: same state_dict, same function.</summary>
public sealed class TorchVisionCompatibilityTests
{
    public TorchVisionCompatibilityTests() => TorchSharpRuntime.EnsureLoaded();

    public static TheoryData<ResNetArchitecture> ImageNetArchitectures => new()
    {
        ResNetArchitecture.ResNet18, ResNetArchitecture.ResNet34, ResNetArchitecture.ResNet50,
        ResNetArchitecture.ResNet101, ResNetArchitecture.ResNet152,
    };

    [Theory]
    [MemberData(nameof(ImageNetArchitectures))]
    public void State_dict_keys_shapes_and_dtypes_equal_torchvision(ResNetArchitecture architecture)
    {
        // state_dict() hands out new tensor handles; the scope frees them before the next (large) model.
        using var scope = torch.NewDisposeScope();
        using var ours = ResNetFactory.Create(new ResNetOptions { Architecture = architecture, NumClasses = 1000 });
        using var reference = TorchVision(architecture);

        var expected = Describe(reference);
        var actual = Describe(ours);

        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, shapeAndType) in expected)
            Assert.True(shapeAndType == actual[key], $"{key}: torchvision {shapeAndType}, ours {actual[key]}");
        // BatchNorm buffers are part of the contract (eval-mode inference depends on them).
        Assert.Contains("layer1.0.bn1.running_mean", actual.Keys);
        Assert.Contains("layer1.0.bn1.num_batches_tracked", actual.Keys);
    }

    [Fact]
    public void Torchvision_resnet18_weights_load_into_ours_and_give_identical_fp32_logits()
    {
        torch.manual_seed(7);
        using var reference = torchvision.models.resnet18(num_classes: 10);
        RandomiseBatchNorm(reference);
        string file = Path.Combine(Path.GetTempPath(), $"sdfp-resnet18-{Guid.NewGuid():N}.dat");
        try
        {
            reference.save(file);
            using var ours = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet18, NumClasses = 10 });
            ours.load(file, strict: true);
            reference.eval();
            ours.eval();

            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var input = torch.randn(2, 3, 64, 64);
            var expected = reference.call(input);
            var actual = ours.call(input);

            Assert.Equal(new long[] { 2, 10 }, actual.shape);
            Assert.True(expected.Equals(actual),
                $"logits differ by up to {(expected - actual).abs().max().ToSingle()}");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Torchvision_state_dict_loads_directly_and_ours_exports_back()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var reference = torchvision.models.resnet18(num_classes: 5);
        RandomiseBatchNorm(reference);
        using var ours = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet18, NumClasses = 5 });

        var (missing, unexpected) = ours.load_state_dict(reference.state_dict(), strict: true);

        Assert.Empty(missing);
        Assert.Empty(unexpected);
        var theirs = reference.state_dict();
        foreach (var (key, value) in ours.state_dict())
            Assert.True(theirs[key].Equals(value), $"{key} differs after load_state_dict");
    }

    private static nn.Module<Tensor, Tensor> TorchVision(ResNetArchitecture architecture) => architecture switch
    {
        ResNetArchitecture.ResNet18 => torchvision.models.resnet18(),
        ResNetArchitecture.ResNet34 => torchvision.models.resnet34(),
        ResNetArchitecture.ResNet50 => torchvision.models.resnet50(),
        ResNetArchitecture.ResNet101 => torchvision.models.resnet101(),
        ResNetArchitecture.ResNet152 => torchvision.models.resnet152(),
        _ => throw new ArgumentOutOfRangeException(nameof(architecture)),
    };

    private static Dictionary<string, string> Describe(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => $"[{string.Join(", ", kv.Value.shape)}] {kv.Value.dtype}");

    // Fresh batch norms are the identity in eval mode; random statistics make the comparison see
    // whether every running_mean/running_var/affine parameter landed in the right layer.
    private static void RandomiseBatchNorm(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, tensor) in module.state_dict())
        {
            if (tensor.dtype != ScalarType.Float32)
                continue; // num_batches_tracked
            if (name.EndsWith("running_mean", StringComparison.Ordinal) || name.EndsWith("bias", StringComparison.Ordinal))
                tensor.uniform_(-0.2, 0.2);
            else if (name.EndsWith("running_var", StringComparison.Ordinal))
                tensor.uniform_(0.5, 1.5);
            else if (tensor.dim() == 1 && name.EndsWith("weight", StringComparison.Ordinal))
                tensor.uniform_(0.5, 1.5); // batch-norm scale: the only 1-D weights
        }
    }
}
