using Microsoft.ML.SDfp.Numerics.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>
/// ResNet-18/34/50/101/152 in torchvision's topology (v1.5: Bottleneck stride on the 3×3 conv),
/// with state_dict keys equal to <c>torchvision.models.resnetNN</c>'s.
/// </summary>
/// <remarks>
/// Stem: 7×7 stride-2 conv, batch norm, ReLU, 3×3 stride-2 max-pool; or, with
/// <see cref="ResNetOptions.SmallImageStem"/>, a 3×3 stride-1 conv without max-pool. Then four
/// stages of 64/128/256/512 planes (strides 1/2/2/2), adaptive average pooling to 1×1 (so any
/// input size works) and the classifier <c>fc</c>.
/// </remarks>
public sealed class ImageNetResNet : ResNetModel
{
    private readonly QuantizedConv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly MaxPool2d? maxpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly QuantizedLinear fc;

    internal ImageNetResNet(ResNetOptions options)
        : base(options.Architecture.ToString(), options, 512L * ExpansionOf(options.Architecture))
    {
        var (bottleneck, blocks) = Layout(options.Architecture);
        conv1 = options.SmallImageStem
            ? new QuantizedConv2d(FirstConvName, options.InputChannels, 64, kernelSize: 3, stride: 1, padding: 1)
            : new QuantizedConv2d(FirstConvName, options.InputChannels, 64, kernelSize: 7, stride: 2, padding: 3);
        bn1 = nn.BatchNorm2d(64);
        relu = nn.ReLU();
        maxpool = options.SmallImageStem ? null : nn.MaxPool2d(3, stride: 2, padding: 1);

        long inPlanes = 64;
        layer1 = MakeStage("layer1", bottleneck, ref inPlanes, 64, blocks[0], stride: 1);
        layer2 = MakeStage("layer2", bottleneck, ref inPlanes, 128, blocks[1], stride: 2);
        layer3 = MakeStage("layer3", bottleneck, ref inPlanes, 256, blocks[2], stride: 2);
        layer4 = MakeStage("layer4", bottleneck, ref inPlanes, 512, blocks[3], stride: 2);
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = new QuantizedLinear(LastLinearName, inPlanes, options.NumClasses);

        register_module("conv1", conv1);
        register_module("bn1", bn1);
        register_module("relu", relu);
        if (maxpool is not null)
            register_module("maxpool", maxpool);
        register_module("layer1", layer1);
        register_module("layer2", layer2);
        register_module("layer3", layer3);
        register_module("layer4", layer4);
        register_module("avgpool", avgpool);
        register_module("fc", fc);

        if (options.ZeroInitResidual)
        {
            foreach (var module in modules())
            {
                if (module is BasicBlock basic)
                    basic.ZeroInitLastNorm();
                else if (module is Bottleneck neck)
                    neck.ZeroInitLastNorm();
            }
        }
        SetQuantization(options.Quantization);
    }

    /// <inheritdoc />
    public override QuantizedLinear Classifier => fc;

    /// <inheritdoc />
    public override Tensor Features(Tensor input)
    {
        ValidateInput(input);
        using var scope = NewDisposeScope();
        var x = relu.call(bn1.call(conv1.call(input)));
        if (maxpool is not null)
            x = maxpool.call(x);
        x = layer1.call(x);
        x = layer2.call(x);
        x = layer3.call(x);
        x = layer4.call(x);
        return avgpool.call(x).flatten(1).MoveToOuterDisposeScope();
    }

    /// <summary>Whether the architecture is one of the torchvision ImageNet ResNets.</summary>
    internal static bool Supports(ResNetArchitecture architecture) => architecture is
        ResNetArchitecture.ResNet18 or ResNetArchitecture.ResNet34 or ResNetArchitecture.ResNet50 or
        ResNetArchitecture.ResNet101 or ResNetArchitecture.ResNet152;

    private static int ExpansionOf(ResNetArchitecture architecture) =>
        Layout(architecture).Bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion;

    private static (bool Bottleneck, int[] Blocks) Layout(ResNetArchitecture architecture) => architecture switch
    {
        ResNetArchitecture.ResNet18 => (false, [2, 2, 2, 2]),
        ResNetArchitecture.ResNet34 => (false, [3, 4, 6, 3]),
        ResNetArchitecture.ResNet50 => (true, [3, 4, 6, 3]),
        ResNetArchitecture.ResNet101 => (true, [3, 4, 23, 3]),
        ResNetArchitecture.ResNet152 => (true, [3, 8, 36, 3]),
        _ => throw new ArgumentOutOfRangeException(nameof(architecture), architecture, "Not a torchvision ImageNet ResNet."),
    };

    private static Sequential MakeStage(string name, bool bottleneck, ref long inPlanes, long planes, int blocks, long stride)
    {
        var children = new (string, nn.Module<Tensor, Tensor>)[blocks];
        for (int i = 0; i < blocks; i++)
        {
            string prefix = $"{name}.{i}";
            long s = i == 0 ? stride : 1;
            children[i] = (i.ToString(System.Globalization.CultureInfo.InvariantCulture), bottleneck
                ? new Bottleneck(prefix, inPlanes, planes, s)
                : new BasicBlock(prefix, inPlanes, planes, s));
            inPlanes = planes * (bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion);
        }
        return nn.Sequential(children);
    }
}
