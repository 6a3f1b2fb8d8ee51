using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Layers;

/// <summary>
/// A drop-in 2-D convolution whose GEMM operands are (shifted) dynamic fixed point: forward quantises the weights W
/// and the input A; backward quantises the incoming error G once and uses it for both the input gradient (with the
/// quantised W) and the weight gradient (with the quantised A). Master weights stay FP32. Parameters are named
/// "weight" and "bias" like torchvision, so state dicts interchange with <c>nn.Conv2d</c>.
/// </summary>
/// <remarks>
/// Quantisation applies in eval mode too: inference runs in the format the model was trained in. Each role can be
/// switched off through <see cref="Config"/> (a null role is FP32).
/// </remarks>
public sealed class QuantizedConv2d : nn.Module<Tensor, Tensor>, IQuantizedLayer
{
    private readonly LayerQuantizers _quantizers;
    private readonly long[] _stride, _padding, _dilation;
    private readonly long _groups;

    /// <summary>Creates the layer with kaiming-normal weights (fan_out, ReLU gain), as torchvision's ResNets initialise convs.</summary>
    /// <param name="name">Layer name for telemetry and errors, e.g. "layer1.0.conv1".</param>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="kernelSize">Square kernel size.</param>
    /// <param name="stride">Stride. Default 1.</param>
    /// <param name="padding">Zero padding on each side. Default 0.</param>
    /// <param name="dilation">Dilation. Default 1.</param>
    /// <param name="groups">Groups; both channel counts must be divisible by it. Default 1.</param>
    /// <param name="bias">Whether to add a learnable bias (initialised to zero). Default false, as in ResNets.</param>
    /// <param name="config">Quantisation per role; null means <see cref="QuantizationConfig.Fp32"/>.</param>
    /// <param name="telemetry">Statistics sink, or null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive, or the channels are not divisible by groups.</exception>
    public QuantizedConv2d(string name, long inChannels, long outChannels, long kernelSize,
        long stride = 1, long padding = 0, long dilation = 1, long groups = 1, bool bias = false,
        QuantizationConfig? config = null, QuantizationTelemetry? telemetry = null)
        : base(name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Positive(inChannels, nameof(inChannels));
        Positive(outChannels, nameof(outChannels));
        Positive(kernelSize, nameof(kernelSize));
        Positive(stride, nameof(stride));
        Positive(dilation, nameof(dilation));
        Positive(groups, nameof(groups));
        if (padding < 0)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, $"padding = {padding} must not be negative.");
        if (inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), groups,
                $"groups = {groups} must divide inChannels = {inChannels} and outChannels = {outChannels}.");

        LayerName = name;
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        _stride = [stride, stride];
        _padding = [padding, padding];
        _dilation = [dilation, dilation];
        _groups = groups;

        var w = empty(outChannels, inChannels / groups, kernelSize, kernelSize);
        nn.init.kaiming_normal_(w, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
        register_parameter("weight", new Parameter(w));
        if (bias)
            register_parameter("bias", new Parameter(zeros(outChannels)));
        _quantizers = new LayerQuantizers(name, config ?? QuantizationConfig.Fp32, telemetry);
    }

    /// <summary>FP32 master weights [out, in/groups, k, k], registered as "weight".</summary>
    public Parameter weight => get_parameter("weight")!;

    /// <summary>Bias [out], registered as "bias", or null when the layer has none.</summary>
    public Parameter? bias => get_parameter("bias");

    /// <summary>Layer name used in telemetry and errors.</summary>
    public string LayerName { get; }

    /// <summary>Input channels.</summary>
    public long InChannels { get; }

    /// <summary>Output channels.</summary>
    public long OutChannels { get; }

    /// <summary>Kernel size.</summary>
    public long KernelSize { get; }

    /// <summary>Quantisation per role. Setting a different config validates it and restarts the role streams (delayed histories).</summary>
    public QuantizationConfig Config
    {
        get => _quantizers.Config;
        set => _quantizers.Config = value;
    }

    /// <summary>Statistics sink, or null.</summary>
    public QuantizationTelemetry? Telemetry
    {
        get => _quantizers.Telemetry;
        set => _quantizers.Telemetry = value;
    }

    /// <summary>
    /// Whether the forward GEMM is exact under the current <see cref="Config"/>: K = in/groups · k · k products of the
    /// quantised operands sum without rounding in FP32 (see <see cref="Dfp.IsExactFp32Accumulation"/>).
    /// </summary>
    public bool IsForwardExact =>
        Dfp.IsExactFp32Accumulation(InChannels / _groups * KernelSize * KernelSize, Config.Activation, Config.Weight);

    /// <summary>The quantiser of <paramref name="role"/>, or null when that role is FP32 (exposes exponents and histories).</summary>
    /// <param name="role">The tensor role.</param>
    public TensorQuantizer? Quantizer(TensorRole role) => _quantizers.For(role);

    /// <summary>Convolves the quantised input with the quantised weights.</summary>
    /// <param name="input">[N, in, H, W].</param>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.size(1) != InChannels)
            throw new ArgumentException(
                $"Layer '{LayerName}' expects input [N, {InChannels}, H, W], got [{string.Join(", ", input.shape)}].", nameof(input));
        // Nothing to quantise (FP32, or a frozen scoring network): no dispose scope, which is most of a layer's
        // managed allocation when scoring one image.
        if (Config.IsFp32)
            return nn.functional.conv2d(input, weight, bias, _stride, _padding, _dilation, _groups);
        using var scope = NewDisposeScope();
        var a = _quantizers.Activation(input);
        var w = _quantizers.Weight(weight);
        var y = nn.functional.conv2d(a, w, bias, _stride, _padding, _dilation, _groups);
        return _quantizers.Output(y).MoveToOuterDisposeScope();
    }

    /// <summary>Releases the quantisers and the parameters.</summary>
    /// <param name="disposing">True when called from <see cref="IDisposable.Dispose"/>.</param>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _quantizers.Dispose();
        base.Dispose(disposing);
    }

    internal static void Positive(long value, string name)
    {
        if (value <= 0)
            throw new ArgumentOutOfRangeException(name, value, $"{name} = {value} must be positive.");
    }
}
