using Microsoft.ML.SDfp.Numerics.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Layers;

/// <summary>
/// Identity in forward; in backward quantises the error G arriving at a layer's output once, so that the native
/// conv/linear backward uses the same quantised G for both dgrad and wgrad.
/// </summary>
internal sealed class ErrorQuantizeFunction : autograd.SingleTensorFunction<ErrorQuantizeFunction>
{
    private const string QuantizerKey = "quantizer";

    public override string Name => "SDfpErrorQuantize";

    /// <summary>vars: the layer output, the error quantiser.</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data(QuantizerKey, new QuantizerBox((TensorQuantizer)vars[1]));
        // Returning the input as-is would make libtorch wrap it as a view, and the common in-place op right after a
        // layer (relu_) would then fail. Declaring it "modified in place" instead rebases its history onto this node
        // at no cost; nothing saved for backward depends on the GEMM output's values.
        var output = (Tensor)vars[0];
        ctx.mark_dirty([output]);
        return output;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        var quantizer = ((QuantizerBox)ctx.get_data(QuantizerKey)).Quantizer!;
        return [BackwardErrors.Guard(() => quantizer.FakeQuantize(grad_output)), null!];
    }
}
