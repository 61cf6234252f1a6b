package io.fraudml.alerts;

import org.apache.spark.sql.api.java.UDF1;
import scala.collection.Seq;

/**
 * The margin of an XGBoost {@code binary:logistic} booster as a Spark SQL function, for the
 * real-time alerts query (which runs no Python).
 *
 * <p>XGBoost's own rules: a row goes left at a node when {@code float32(x) < split} (both
 * float32) and a missing value (null or NaN) the node's default way; the margin is the base
 * margin plus every tree's leaf value. The model arrives as the text that
 * {@code fraud_ml.alerts.booster_sql.CompiledChampion.margin_model_text} writes:
 *
 * <pre>
 * booster-margin 1 &lt;features&gt; &lt;trees&gt; &lt;base margin&gt;
 * &lt;left children&gt;;&lt;right children&gt;;&lt;split features&gt;;&lt;split conditions or leaf values&gt;;&lt;default left 0/1&gt;
 * ... one line per tree, values comma-separated, in booster order
 * </pre>
 */
public final class BoosterMargin implements UDF1<Seq<Object>, Double> {
  private static final long serialVersionUID = 1L;
  static final String MAGIC = "booster-margin 1";

  private final int features;
  private final double baseMargin;
  private final int[] roots;
  // All trees' nodes in one set of arrays; children are absolute indices, -1 marks a leaf.
  private final int[] left;
  private final int[] right;
  private final int[] feature;
  private final float[] split;
  private final double[] leaf;
  private final boolean[] defaultLeft;

  public BoosterMargin(String model) {
    String[] lines = model.split("\n");
    String[] head = lines[0].trim().split(" ");
    if (head.length != 5 || !(head[0] + " " + head[1]).equals(MAGIC)) {
      throw new IllegalArgumentException("not a booster-margin model text: " + lines[0]);
    }
    features = Integer.parseInt(head[2]);
    int trees = Integer.parseInt(head[3]);
    baseMargin = Double.parseDouble(head[4]);
    if (lines.length != trees + 1) {
      throw new IllegalArgumentException("expected " + trees + " trees, got " + (lines.length - 1) + " lines");
    }
    String[][][] parts = new String[trees][][];
    int total = 0;
    for (int t = 0; t < trees; t++) {
      String[] fields = lines[t + 1].split(";", -1);
      if (fields.length != 5) {
        throw new IllegalArgumentException("tree " + t + ": expected 5 fields, got " + fields.length);
      }
      parts[t] = new String[5][];
      for (int k = 0; k < 5; k++) {
        parts[t][k] = fields[k].split(",");
        if (parts[t][k].length != parts[t][0].length) {
          throw new IllegalArgumentException("tree " + t + ": fields of different lengths");
        }
      }
      total += parts[t][0].length;
    }
    roots = new int[trees];
    left = new int[total];
    right = new int[total];
    feature = new int[total];
    split = new float[total];
    leaf = new double[total];
    defaultLeft = new boolean[total];
    int offset = 0;
    for (int t = 0; t < trees; t++) {
      String[][] p = parts[t];
      int nodes = p[0].length;
      roots[t] = offset;
      for (int i = 0; i < nodes; i++) {
        int l = Integer.parseInt(p[0][i]);
        int r = Integer.parseInt(p[1][i]);
        int f = Integer.parseInt(p[2][i]);
        boolean isLeaf = l == -1;
        if (!isLeaf && (l <= i || r <= i || l >= nodes || r >= nodes || f < 0 || f >= features)) {
          throw new IllegalArgumentException("tree " + t + " node " + i + ": children or feature out of range");
        }
        int n = offset + i;
        left[n] = isLeaf ? -1 : offset + l;
        right[n] = isLeaf ? -1 : offset + r;
        feature[n] = f;
        split[n] = Float.parseFloat(p[3][i]);
        leaf[n] = Double.parseDouble(p[3][i]);
        defaultLeft[n] = p[4][i].equals("1");
      }
      offset += nodes;
    }
  }

  /** The margin of one row of float32 features (NaN = missing). */
  public double margin(float[] x) {
    double sum = baseMargin;
    for (int root : roots) {
      int n = root;
      while (left[n] != -1) {
        float v = x[feature[n]];
        boolean goesLeft = Float.isNaN(v) ? defaultLeft[n] : v < split[n];
        n = goesLeft ? left[n] : right[n];
      }
      sum += leaf[n];
    }
    return sum;
  }

  /** The margin of an {@code array<float>} of the model's features in order; null in, null out. */
  @Override
  public Double call(Seq<Object> values) {
    if (values == null) {
      return null;
    }
    if (values.length() != features) {
      throw new IllegalArgumentException("expected " + features + " features, got " + values.length());
    }
    float[] x = new float[features];
    for (int i = 0; i < features; i++) {
      Object v = values.apply(i);
      x[i] = v == null ? Float.NaN : ((Number) v).floatValue();
    }
    return margin(x);
  }

  public int features() {
    return features;
  }

  public int trees() {
    return roots.length;
  }
}
