using Microsoft.ML.SDfp.Numerics.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>
/// The CIFAR ResNets of He et al. (2016, §4.2): ResNet-20/32/56, i.e. 6n + 2 layers with
/// n = (depth − 2)/6 BasicBlocks in each of three stages of 16/32/64 channels.
/// </summary>
/// <remarks>
/// <para>
/// Stem: 3×3 stride-1 conv with 16 channels, batch norm, ReLU (no max-pool). Stages
/// <c>layer1..layer3</c> use strides 1/2/2; then adaptive average pooling and the classifier
/// <c>fc</c> (64 → classes). Module names follow torchvision's conventions.
/// </para>
/// <para>
/// Shortcuts: where a block changes shape (the first block of <c>layer2</c> and <c>layer3</c>)
/// it uses a 1×1-conv + batch-norm projection, the paper's option B. The paper's CIFAR numbers use
/// option A (zero-padded identity, parameter-free); option B is chosen here because it is exactly the
/// <c>downsample</c> module of the torchvision networks (one block implementation, one
/// persistence format, and every shortcut conv is a GEMM that S-DFP quantises like the rest).
/// It costs two projections, 2 752 extra parameters (ResNet-20 with 10 classes: 272 474
/// instead of option A's 269 722), so accuracies are not strictly comparable with the paper's table.
/// </para>
/// </remarks>
public sealed class CifarResNet : ResNetModel
{
    private readonly QuantizedConv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly QuantizedLinear fc;

    internal CifarResNet(ResNetOptions options)
        : base(options.Architecture.ToString(), options, 64)
    {
        int n = BlocksPerStage(options.Architecture);
        conv1 = new QuantizedConv2d(FirstConvName, options.InputChannels, 16, kernelSize: 3, stride: 1, padding: 1);
        bn1 = nn.BatchNorm2d(16);
        relu = nn.ReLU();
        long inPlanes = 16;
        layer1 = MakeStage("layer1", ref inPlanes, 16, n, stride: 1);
        layer2 = MakeStage("layer2", ref inPlanes, 32, n, stride: 2);
        layer3 = MakeStage("layer3", ref inPlanes, 64, n, stride: 2);
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = new QuantizedLinear(LastLinearName, inPlanes, options.NumClasses);

        register_module("conv1", conv1);
        register_module("bn1", bn1);
        register_module("relu", relu);
        register_module("layer1", layer1);
        register_module("layer2", layer2);
        register_module("layer3", layer3);
        register_module("avgpool", avgpool);
        register_module("fc", fc);

        if (options.ZeroInitResidual)
        {
            foreach (var block in modules().OfType<BasicBlock>())
                block.ZeroInitLastNorm();
        }
        SetQuantization(options.Quantization);
    }

    /// <inheritdoc />
    public override QuantizedLinear Classifier => fc;

    /// <summary>BasicBlocks per stage, n = (depth − 2) / 6.</summary>
    public int BlocksPerStageCount => BlocksPerStage(Options.Architecture);

    /// <inheritdoc />
    public override Tensor Features(Tensor input)
    {
        ValidateInput(input);
        using var scope = NewDisposeScope();
        var x = relu.call(bn1.call(conv1.call(input)));
        x = layer1.call(x);
        x = layer2.call(x);
        x = layer3.call(x);
        return avgpool.call(x).flatten(1).MoveToOuterDisposeScope();
    }

    /// <summary>Whether the architecture is one of the CIFAR ResNets.</summary>
    internal static bool Supports(ResNetArchitecture architecture) => architecture is
        ResNetArchitecture.ResNet20 or ResNetArchitecture.ResNet32 or ResNetArchitecture.ResNet56;

    private static int BlocksPerStage(ResNetArchitecture architecture) => architecture switch
    {
        ResNetArchitecture.ResNet20 => 3,
        ResNetArchitecture.ResNet32 => 5,
        ResNetArchitecture.ResNet56 => 9,
        _ => throw new ArgumentOutOfRangeException(nameof(architecture), architecture, "Not a CIFAR ResNet."),
    };

    private static Sequential MakeStage(string name, ref long inPlanes, long planes, int blocks, long stride)
    {
        var children = new (string, nn.Module<Tensor, Tensor>)[blocks];
        for (int i = 0; i < blocks; i++)
        {
            children[i] = (i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                new BasicBlock($"{name}.{i}", inPlanes, planes, i == 0 ? stride : 1));
            inPlanes = planes;
        }
        return nn.Sequential(children);
    }
}
