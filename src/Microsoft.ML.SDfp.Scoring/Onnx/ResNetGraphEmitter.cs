using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.SDfp.Persistence;

namespace Microsoft.ML.SDfp.Onnx;

/// <summary>
/// Writes a trained S-DFP ResNet as ONNX nodes into an <see cref="OnnxContext"/>: ML.NET's when a pipeline is
/// exported with <c>ConvertToOnnx</c>, or a standalone one for ONNX Runtime scoring. The graph follows the stored
/// tensors' names (torchvision layout), so every ResNet the trainer builds maps onto it.
/// </summary>
/// <remarks>
/// <para>Input: RGB pixels [N, 3, H, W] in [0, 1] at the model's input size. Grey models take BT.601 luma in the
/// graph, and every model normalises per channel in the graph, with the same float operations in the same order as
/// the TorchSharp route, so both see bit-identical input tensors.</para>
/// <para>A quantised layer: optional float Clip (formats under 8 bits), QuantizeLinear with scale 2^e, then
/// ConvInteger/MatMulInteger, whose int32 sums are exact, then one float rescale by 2^(e_a + e_w). Integer operands
/// are uint8 with zero point 128: the same integers, but ONNX Runtime's u8 kernels are several times faster than its
/// s8-activation ones.</para>
/// </remarks>
internal sealed class ResNetGraphEmitter
{
    private const string Domain = "";
    private const int UInt8ZeroPoint = 128;
    private const float BatchNormEpsilon = 1e-5f;

    private readonly OnnxContext _ctx;
    private readonly ScoringNetwork _network;
    private readonly OnnxGraphKind _kind;
    private readonly string _prefix;
    private string? _zeroPoint;

    private ResNetGraphEmitter(OnnxContext ctx, ScoringNetwork network, OnnxGraphKind kind, string prefix)
    {
        _ctx = ctx;
        _network = network;
        _kind = kind;
        _prefix = prefix;
    }

    /// <summary>Smallest ONNX opset the graph needs (Clip with tensor bounds, integer ops, QuantizeLinear).</summary>
    public const int MinimumOpSet = 11;

    /// <summary>
    /// Emits the network reading <paramref name="pixels"/>. Returns the variables of the softmax probabilities
    /// [N, classes], the predicted key (uint32, 1-based as ML.NET keys) [N] and the embedding [N, features].
    /// </summary>
    public static (string Probabilities, string PredictedKey, string Embedding) Emit(OnnxContext ctx, ScoringNetwork network, string pixels,
        OnnxGraphKind kind, string prefix = "sdfp.")
    {
        ctx.CheckOpSetVersion(MinimumOpSet, "S-DFP image classifier");
        CheckExpressible(network, kind);
        var emitter = new ResNetGraphEmitter(ctx, network, kind, prefix);
        return emitter.EmitNetwork(pixels);
    }

    /// <summary>
    /// Refuses what the exact graph cannot express: integer operands wider than 8 bits (ONNX Runtime has no int16
    /// integer convolution, and a float path would not be the training arithmetic).
    /// </summary>
    public static void CheckExpressible(ScoringNetwork network, OnnxGraphKind kind)
    {
        if (kind != OnnxGraphKind.Exact)
        {
            return;
        }

        if (network.ActivationExponents.Count > 0 && network.ActivationBits > 8)
        {
            throw new NotSupportedException(
                $"This {network.Architecture} quantises activations to {network.ActivationBits} bits; ONNX export and ONNX Runtime scoring support formats of at most 8 bits " +
                "(ONNX has no 16-bit integer convolution). Score it with the training package (TorchSharp), or train with 8 bits or fewer.");
        }

        StoredTensor? wide = network.Tensors.Values.FirstOrDefault(t => t.Kind == StoredTensorKind.Int16);
        if (wide is not null)
        {
            throw new NotSupportedException(
                $"Weight '{wide.Name}' of this {network.Architecture} is stored in {wide.Bits} bits; ONNX export and ONNX Runtime scoring support formats of at most 8 bits " +
                "(ONNX has no 16-bit integer convolution). Score it with the training package (TorchSharp), or train with 8 bits or fewer.");
        }
    }

    private (string, string, string) EmitNetwork(string pixels)
    {
        string x = ModelChannels(pixels);
        x = Normalize(x);

        StoredTensor stem = _network.Tensor("conv1.weight");
        bool imageNetStem = stem.Shape[2] == 7;
        x = Relu(BatchNorm(Conv(x, "conv1", imageNetStem ? 2 : 1), "bn1"));
        if (imageNetStem)
        {
            string pooled = Var("maxpool");
            OnnxNode pool = Node("MaxPool", [x], pooled);
            pool.AddAttribute("kernel_shape", new long[] { 3, 3 });
            pool.AddAttribute("strides", new long[] { 2, 2 });
            pool.AddAttribute("pads", new long[] { 1, 1, 1, 1 });
            x = pooled;
        }

        for (int stage = 1; _network.Tensors.ContainsKey($"layer{stage}.0.conv1.weight"); stage++)
        {
            for (int block = 0; _network.Tensors.ContainsKey($"layer{stage}.{block}.conv1.weight"); block++)
            {
                // torchvision and CIFAR ResNets both stride the first block of every stage after the first.
                x = Block(x, $"layer{stage}.{block}", stride: stage > 1 && block == 0 ? 2 : 1);
            }
        }

        string gap = Var("avgpool");
        Node("GlobalAveragePool", [x], gap);
        string embedding = Var("features");
        Node("Flatten", [gap], embedding).AddAttribute("axis", 1L);
        string logits = Linear(embedding, "fc");
        string probabilities = Var("softmax");
        Node("Softmax", [logits], probabilities).AddAttribute("axis", 1L);

        // ML.NET keys are 1-based (0 is missing); ArgMax keeps the first of equal maxima, as the row mapper does.
        string argMax = Var("argmax");
        OnnxNode arg = Node("ArgMax", [probabilities], argMax);
        arg.AddAttribute("axis", 1L);
        arg.AddAttribute("keepdims", 0L);
        string plusOne = Var("argmax1");
        Node("Add", [argMax, _ctx.AddInitializer(1L, _prefix + "one")], plusOne);
        string key = Var("predicted_key");
        Node("Cast", [plusOne], key).AddAttribute("to", 12L); // UINT32
        return (probabilities, key, embedding);
    }

    private string Block(string input, string path, int stride)
    {
        bool bottleneck = _network.Tensors.ContainsKey(path + ".conv3.weight");
        string identity = _network.Tensors.ContainsKey(path + ".downsample.0.weight")
            ? BatchNorm(Conv(input, path + ".downsample.0", stride), path + ".downsample.1")
            : input;
        string y;
        if (bottleneck)
        {
            y = Relu(BatchNorm(Conv(input, path + ".conv1", 1), path + ".bn1"));
            y = Relu(BatchNorm(Conv(y, path + ".conv2", stride), path + ".bn2"));
            y = BatchNorm(Conv(y, path + ".conv3", 1), path + ".bn3");
        }
        else
        {
            y = Relu(BatchNorm(Conv(input, path + ".conv1", stride), path + ".bn1"));
            y = BatchNorm(Conv(y, path + ".conv2", 1), path + ".bn2");
        }

        string sum = Var(path + ".add");
        Node("Add", [y, identity], sum);
        return Relu(sum);
    }

    private string ModelChannels(string rgb)
    {
        if (_network.Channels == 3)
        {
            return rgb;
        }

        // ((0.299·r + 0.587·g) + 0.114·b), the C# expression's order and roundings.
        string[] planes = [Var("r"), Var("g"), Var("b")];
        Node("Split", [rgb], planes).AddAttribute("axis", 1L);
        string r = Mul(planes[0], _ctx.AddInitializer(0.299f, _prefix + "luma_r"), "luma_r");
        string g = Mul(planes[1], _ctx.AddInitializer(0.587f, _prefix + "luma_g"), "luma_g");
        string b = Mul(planes[2], _ctx.AddInitializer(0.114f, _prefix + "luma_b"), "luma_b");
        string rg = Var("luma_rg");
        Node("Add", [r, g], rg);
        string luma = Var("luma");
        Node("Add", [rg, b], luma);
        return luma;
    }

    private string Normalize(string x)
    {
        long[] dims = [1, _network.Channels, 1, 1];
        string centred = Var("centred");
        Node("Sub", [x, _ctx.AddInitializer(_network.Mean, dims, _prefix + "mean")], centred);
        string normalized = Var("normalized");
        Node("Div", [centred, _ctx.AddInitializer(_network.Std, dims, _prefix + "std")], normalized);
        return normalized;
    }

    private string Conv(string input, string layer, int stride)
    {
        StoredTensor weight = _network.Tensor(layer + ".weight");
        StoredTensor? bias = _network.Tensors.GetValueOrDefault(layer + ".bias");
        long kernel = weight.Shape[2];
        long pad = kernel / 2;
        void Attributes(OnnxNode node)
        {
            node.AddAttribute("kernel_shape", new long[] { kernel, kernel });
            node.AddAttribute("strides", new long[] { stride, stride });
            node.AddAttribute("pads", new long[] { pad, pad, pad, pad });
        }

        if (IntegerPath(layer, weight, out int activationExponent))
        {
            string q = QuantizeActivation(input, layer, activationExponent);
            string accumulator = Var(layer + ".acc");
            Attributes(Node("ConvInteger", [q, UInt8Weight(weight, transpose: false), ZeroPoint(), ZeroPoint()], accumulator));
            string y = Rescale(accumulator, layer, activationExponent + weight.Exponent);
            return bias is null ? y : AddBias(y, bias, layer, [1, bias.Shape[0], 1, 1]);
        }

        string x = FloatActivation(input, layer);
        var inputs = new List<string> { x, FloatWeight(weight) };
        if (bias is not null)
        {
            inputs.Add(_ctx.AddInitializer(bias.ToFloats(), bias.Shape, _prefix + bias.Name));
        }

        string output = Var(layer);
        Attributes(Node("Conv", inputs, output));
        return output;
    }

    private string Linear(string input, string layer)
    {
        StoredTensor weight = _network.Tensor(layer + ".weight");
        StoredTensor? bias = _network.Tensors.GetValueOrDefault(layer + ".bias");
        if (IntegerPath(layer, weight, out int activationExponent))
        {
            string q = QuantizeActivation(input, layer, activationExponent);
            string accumulator = Var(layer + ".acc");
            Node("MatMulInteger", [q, UInt8Weight(weight, transpose: true), ZeroPoint(), ZeroPoint()], accumulator);
            string y = Rescale(accumulator, layer, activationExponent + weight.Exponent);
            return bias is null ? y : AddBias(y, bias, layer, [1, bias.Shape[0]]);
        }

        string x = FloatActivation(input, layer);
        var inputs = new List<string> { x, FloatWeight(weight) };
        if (bias is not null)
        {
            inputs.Add(_ctx.AddInitializer(bias.ToFloats(), bias.Shape, _prefix + bias.Name));
        }

        string output = Var(layer);
        Node("Gemm", inputs, output).AddAttribute("transB", 1L);
        return output;
    }

    private bool IntegerPath(string layer, StoredTensor weight, out int activationExponent) =>
        _network.ActivationExponents.TryGetValue(layer, out activationExponent) && weight.IsQuantized && _kind == OnnxGraphKind.Exact;

    /// <summary>A layer's input where the GEMM runs in float: fake-quantised (Q then DQ) when only its activations are quantised.</summary>
    private string FloatActivation(string input, string layer)
    {
        if (_kind != OnnxGraphKind.Exact || !_network.ActivationExponents.TryGetValue(layer, out int exponent))
        {
            return input;
        }

        string q = QuantizeActivation(input, layer, exponent);
        string dq = Var(layer + ".dq");
        Node("DequantizeLinear", [q, Scale(exponent, layer + ".a_scale"), ZeroPoint()], dq);
        return dq;
    }

    /// <summary>clamp(round_half_even(x / 2^e), qmin, qmax) + 128 as uint8; the Clip makes narrower formats saturate at their own bounds.</summary>
    private string QuantizeActivation(string input, string layer, int exponent)
    {
        int bits = _network.ActivationBits;
        string x = input;
        if (bits < 8)
        {
            float scale = MathF.ScaleB(1f, exponent);
            float min = -(1 << (bits - 1)) * scale;
            float max = ((1 << (bits - 1)) - 1) * scale;
            string clipped = Var(layer + ".clip");
            Node("Clip", [input, _ctx.AddInitializer(min, _prefix + layer + ".a_min"), _ctx.AddInitializer(max, _prefix + layer + ".a_max")], clipped);
            x = clipped;
        }

        string q = Var(layer + ".q");
        Node("QuantizeLinear", [x, Scale(exponent, layer + ".a_scale"), ZeroPoint()], q);
        return q;
    }

    private string Rescale(string accumulator, string layer, int exponent)
    {
        string asFloat = Var(layer + ".accf");
        Node("Cast", [accumulator], asFloat).AddAttribute("to", 1L); // FLOAT
        return Mul(asFloat, Scale(exponent, layer + ".scale"), layer);
    }

    private string AddBias(string y, StoredTensor bias, string layer, long[] dims)
    {
        string output = Var(layer + ".biased");
        Node("Add", [y, _ctx.AddInitializer(bias.ToFloats(), dims, _prefix + bias.Name)], output);
        return output;
    }

    /// <summary>
    /// Eval-mode batch norm. The exact graph rounds as libtorch's CPU kernel: per-channel alpha = weight · (1/sqrt(var + eps))
    /// and beta = bias − mean · alpha in float, then y = fma(x, alpha, beta), done in double (the product of two floats
    /// is exact there) and rounded to float once.
    /// </summary>
    private string BatchNorm(string x, string layer)
    {
        float[] weight = _network.Tensor(layer + ".weight").ToFloats();
        float[] bias = _network.Tensor(layer + ".bias").ToFloats();
        float[] mean = _network.Tensor(layer + ".running_mean").ToFloats();
        float[] variance = _network.Tensor(layer + ".running_var").ToFloats();
        int channels = weight.Length;
        if (_kind == OnnxGraphKind.Float)
        {
            long[] shape = [channels];
            string y = Var(layer);
            Node("BatchNormalization",
                [x, Init(weight, shape, layer + ".weight"), Init(bias, shape, layer + ".bias"), Init(mean, shape, layer + ".mean"), Init(variance, shape, layer + ".var")], y)
                .AddAttribute("epsilon", (double)BatchNormEpsilon);
            return y;
        }

        var alpha = new float[channels];
        var beta = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            float invStd = 1f / MathF.Sqrt(variance[c] + BatchNormEpsilon);
            alpha[c] = invStd * weight[c];
            beta[c] = MathF.FusedMultiplyAdd(-mean[c], alpha[c], bias[c]);
        }

        long[] dims = [1, channels, 1, 1];
        string xd = ToDouble(x, layer + ".x");
        string product = Var(layer + ".mul");
        Node("Mul", [xd, ToDouble(Init(alpha, dims, layer + ".alpha"), layer + ".alpha")], product);
        string sum = Var(layer + ".fma");
        Node("Add", [product, ToDouble(Init(beta, dims, layer + ".beta"), layer + ".beta")], sum);
        string output = Var(layer);
        Node("Cast", [sum], output).AddAttribute("to", 1L); // FLOAT
        return output;
    }

    private string ToDouble(string x, string hint)
    {
        string output = Var(hint + ".f64");
        Node("Cast", [x], output).AddAttribute("to", 11L); // DOUBLE
        return output;
    }

    private string Relu(string x)
    {
        string y = Var(x + ".relu");
        Node("Relu", [x], y);
        return y;
    }

    private string Mul(string a, string b, string hint)
    {
        string y = Var(hint + ".mul");
        Node("Mul", [a, b], y);
        return y;
    }

    private string FloatWeight(StoredTensor weight) => Init(weight.ToFloats(), weight.Shape, weight.Name);

    /// <summary>The stored integers plus 128 as uint8 (zero point 128), [out, …] or transposed to [in, out] for MatMulInteger.</summary>
    private string UInt8Weight(StoredTensor weight, bool transpose)
    {
        sbyte[] integers = weight.Int8!;
        var values = new int[integers.Length];
        long[] dims = weight.Shape;
        if (transpose)
        {
            int rows = (int)dims[0], columns = (int)dims[1];
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < columns; c++)
                {
                    values[(c * rows) + r] = integers[(r * columns) + c] + UInt8ZeroPoint;
                }
            }

            dims = [columns, rows];
        }
        else
        {
            for (int i = 0; i < integers.Length; i++)
            {
                values[i] = integers[i] + UInt8ZeroPoint;
            }
        }

        return _ctx.AddInitializer(values, typeof(byte), dims, _prefix + weight.Name);
    }

    private string ZeroPoint() => _zeroPoint ??= _ctx.AddInitializer(UInt8ZeroPoint, typeof(byte), _prefix + "zero_point");

    private string Scale(int exponent, string hint) => _ctx.AddInitializer(MathF.ScaleB(1f, exponent), _prefix + hint);

    private string Init(float[] values, long[] dims, string hint) => _ctx.AddInitializer(values, dims, _prefix + hint);

    // Hints built from another variable's name already carry the prefix.
    private string Var(string hint) => _ctx.AddIntermediateVariable(null, hint.StartsWith(_prefix, StringComparison.Ordinal) ? hint : _prefix + hint, skip: true);

    private OnnxNode Node(string op, IEnumerable<string> inputs, string output) => Node(op, inputs, [output]);

    private OnnxNode Node(string op, IEnumerable<string> inputs, string[] outputs) =>
        _ctx.CreateNode(op, inputs, outputs, _ctx.GetNodeName(_prefix + op), Domain);
}
