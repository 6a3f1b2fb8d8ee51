using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;

namespace Microsoft.ML.SDfp.Onnx;

/// <summary>
/// Writes the S-DFP stage into the ONNX graph that <c>mlContext.Model.ConvertToOnnx</c> builds for a whole pipeline.
/// </summary>
/// <remarks>
/// ONNX has no image decoding, so the steps before the stage that decode and resize images (LoadImages,
/// LoadRawImageBytes) do not export, and the image column enters the graph as what the stage sees after them: a
/// graph input named after the image column, float [N, 3, H, W], RGB planes in [0, 1] at the model's input size.
/// ML.NET's <c>LoadImages → ResizeImages → ExtractPixels(interleavePixelColors: false, scaleImage: 1/255)</c> makes
/// exactly that tensor for <c>ApplyOnnxModel</c>. A float-vector image column of 3×H×W that is already in the graph
/// is used as it is.
/// </remarks>
internal static class PipelineOnnxExport
{
    /// <summary>
    /// Emits the network and maps the stage's output columns (those whose name is not null) to it.
    /// </summary>
    public static void Save(OnnxContext ctx, ScoringNetwork network, string featureColumn, DataViewType featureType,
        (string? Name, DataViewType? Type) score, (string? Name, DataViewType? Type) predictedLabel, (string? Name, DataViewType? Type) embedding)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ResNetGraphEmitter.CheckExpressible(network, OnnxGraphKind.Exact);
        var pixelsType = new VectorDataViewType(NumberDataViewType.Single, 3, network.Height, network.Width);
        string pixels;
        if (ctx.ContainsColumn(featureColumn) && ctx.RetrieveShapeOrNull(ctx.GetVariableName(featureColumn)) is { } shape
            && shape.Skip(1).Aggregate(1L, (a, b) => a * b) == 3L * network.Height * network.Width)
        {
            pixels = ctx.AddIntermediateVariable(null, "sdfp.pixels", skip: true);
            string dims = ctx.AddInitializer(new long[] { -1, 3, network.Height, network.Width }, new long[] { 4 }, "sdfp.pixels_shape");
            ctx.CreateNode("Reshape", [ctx.GetVariableName(featureColumn), dims], [pixels], ctx.GetNodeName("sdfp.Reshape"), string.Empty);
        }
        else if (ctx is OnnxContextImpl impl)
        {
            if (ctx.ContainsColumn(featureColumn))
            {
                // Encoded bytes or an image, which the graph cannot decode: the pixels take the column's place, as the
                // graph input of that name when the data holds it (Model Builder's image bytes), else beside it.
                string variable = ctx.GetVariableName(featureColumn);
                if (impl._inputs.Any(input => input.Name == variable))
                {
                    ctx.RemoveInputVariable(featureColumn);
                }
                else
                {
                    ctx.RemoveColumn(featureColumn);
                }
            }

            impl.AddInputVariable(pixelsType, featureColumn);
            pixels = ctx.GetVariableName(featureColumn);
        }
        else
        {
            throw new NotSupportedException($"Exporting the S-DFP stage needs ML.NET's own ONNX context (mlContext.Model.ConvertToOnnx); got {ctx.GetType().Name}.");
        }

        var (probabilities, predicted, features) = ResNetGraphEmitter.Emit(ctx, network, pixels, OnnxGraphKind.Exact);
        if (featureType is VectorDataViewType { ItemType: var item } && item == NumberDataViewType.Byte)
        {
            // The pipeline's output keeps the image column with its bytes type; the graph has no encoded file, so
            // that output carries the decoded pixels as bytes (round(255 · p)), which is what they were.
            string scaled = ctx.AddIntermediateVariable(null, "sdfp.pixels255", skip: true);
            ctx.CreateNode("Mul", [pixels, ctx.AddInitializer(255f, "sdfp.255")], [scaled], ctx.GetNodeName("sdfp.Mul"), string.Empty);
            string rounded = ctx.AddIntermediateVariable(null, "sdfp.pixels255r", skip: true);
            ctx.CreateNode("Round", scaled, rounded, ctx.GetNodeName("sdfp.Round"), string.Empty);
            string asBytes = ctx.AddIntermediateVariable(featureType, featureColumn);
            ctx.CreateNode("Cast", rounded, asBytes, ctx.GetNodeName("sdfp.Cast"), string.Empty).AddAttribute("to", 2L); // UINT8
        }

        Map(ctx, score, probabilities);
        // ML.NET exports a scalar column as [N, 1].
        string predictedColumn = ctx.AddIntermediateVariable(null, "sdfp.predicted_column", skip: true);
        ctx.CreateNode("Unsqueeze", predicted, predictedColumn, ctx.GetNodeName("sdfp.Unsqueeze"), string.Empty).AddAttribute("axes", new long[] { 1 });
        Map(ctx, predictedLabel, predictedColumn);
        Map(ctx, embedding, features);
    }

    private static void Map(OnnxContext ctx, (string? Name, DataViewType? Type) column, string variable)
    {
        if (column.Name is null)
        {
            return;
        }

        string output = ctx.AddIntermediateVariable(column.Type, column.Name);
        ctx.CreateNode("Identity", variable, output, ctx.GetNodeName("sdfp.Identity"), string.Empty);
    }
}
