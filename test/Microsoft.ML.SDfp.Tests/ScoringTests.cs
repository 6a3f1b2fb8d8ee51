using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>Scoring from many threads, and the embedding featurizer feeding another trainer.</summary>
[Collection(TrainedModelCollection.Name)]
public sealed class ScoringTests(TrainedModelFixture fixture)
{
    [Fact]
    public void Eight_threads_with_their_own_prediction_engines_score_exactly_as_one_thread()
    {
        var rows = fixture.TestRows.Take(24).ToList();
        var serialEngine = fixture.Ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(fixture.Model);
        float[][] serial = rows.Select(r => serialEngine.Predict(r).Score!).ToArray();

        var results = new float[8][][];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            var engine = fixture.Ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(fixture.Model);
            // Each thread walks the rows from a different starting point so the threads really interleave.
            var mine = new float[rows.Count][];
            for (int k = 0; k < rows.Count; k++)
            {
                int i = (k + (3 * t)) % rows.Count;
                mine[i] = engine.Predict(rows[i]).Score!;
            }

            results[t] = mine;
        });

        foreach (float[][] threadResult in results)
        {
            for (int i = 0; i < rows.Count; i++)
            {
                Assert.Equal(serial[i], threadResult[i]);
            }
        }
    }

    [Fact]
    public void Eight_concurrent_cursors_over_Transform_score_exactly_as_one_cursor()
    {
        IDataView scored = fixture.Model.Transform(fixture.TestData);
        List<float[]> serial = TrainedModelFixture.Scores(fixture.Ml, fixture.Model, fixture.TestData);
        var results = new List<float[]>[8];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            results[t] = fixture.Ml.Data.CreateEnumerable<ImagePrediction>(scored, reuseRowObject: false).Select(p => p.Score!).ToList();
        });

        Assert.All(results, r => Assert.Equal(serial, r));
    }

    [Fact]
    public void Transform_scores_in_batches_and_each_row_matches_its_own_batch_position()
    {
        // Smaller batches than rows exercise the read-ahead cursor across several batch boundaries.
        SDfpImageClassificationTransformer classifier = fixture.Classifier;
        Assert.True(classifier.ScoringBatchSize < TrainedModelFixture.TestImages);
        IDataView keyed = fixture.Model.Take(2).Aggregate(fixture.TestData, (d, t) => t.Transform(d));
        var labels = keyed.GetColumn<uint>("Label").ToArray();
        var scored = classifier.Transform(keyed);
        // Passthrough columns stay aligned with the scores of their row.
        Assert.Equal(labels, scored.GetColumn<uint>("Label").ToArray());
        Assert.Equal(TrainedModelFixture.TestImages, scored.GetColumn<VBuffer<float>>("Score").Count());
        Assert.Equal(fixture.TestRows.Select(r => r.ImagePath), scored.GetColumn<string>("ImagePath"));
    }

    [Fact]
    public void The_embedding_featurizer_feeds_FastTree_one_versus_all_which_learns_better_than_chance()
    {
        var featurizer = fixture.Classifier.AsFeaturizer("Embedding");
        var prefix = fixture.Model.Take(2).ToList();
        IDataView Featurize(IDataView data) => featurizer.Transform(prefix.Aggregate(data, (d, t) => t.Transform(d)));

        IDataView train = Featurize(fixture.TrainData);
        DataViewSchema.Column embedding = train.Schema["Embedding"];
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, fixture.Classifier.EmbeddingSize), embedding.Type);
        Assert.Null(train.Schema.GetColumnOrNull("Score"));

        var trainer = fixture.Ml.MulticlassClassification.Trainers.OneVersusAll(
            fixture.Ml.BinaryClassification.Trainers.FastTree(labelColumnName: "Label", featureColumnName: "Embedding",
                numberOfLeaves: 8, numberOfTrees: 20, minimumExampleCountPerLeaf: 5),
            labelColumnName: "Label");
        ITransformer fastTree = trainer.Fit(fixture.Ml.Data.Cache(train));
        MulticlassClassificationMetrics metrics = fixture.Ml.MulticlassClassification.Evaluate(fastTree.Transform(Featurize(fixture.TestData)), "Label");
        Assert.True(metrics.MicroAccuracy > 0.2, $"FastTree on S-DFP embeddings: micro accuracy {metrics.MicroAccuracy:P1}");
    }
}
