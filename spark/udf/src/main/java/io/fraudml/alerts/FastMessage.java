package io.fraudml.alerts;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF2;

/**
 * The alerts query's fast path of validation: the fields of a message that certainly passes every
 * quarantine rule, or null, in which case the Spark SQL rules ({@code validation_sql.py}) decide
 * and name the reason.
 *
 * <p>It takes only the plain form the producer writes: ASCII without a backslash (so no escape,
 * byte order mark or invalid UTF-8), one flat JSON object read by Jackson's strict parser (no
 * {@code NaN} token, comment or trailing text), no repeated key, every feature a finite number,
 * {@code event_time} and {@code label} integers, the id and source strings, unknown fields
 * scalars, and every limit met. Anything else returns null: the fast path never refuses, so it
 * can only be slower than the rules, never disagree with them.
 *
 * <p>Configured by the text {@code fraud_ml.alerts.validation_sql.fast_path_text} writes: one
 * {@code key=value} per line.
 */
public final class FastMessage implements UDF2<byte[], Long, Row> {
  private static final long serialVersionUID = 1L;
  private static final int ID = 0, SOURCE = 1, EVENT_TIME = 2, LABEL = 3;

  private final int maxBytes;
  private final int maxIdLength;
  private final int maxSourceLength;
  private final String idPattern;
  private final String sourcePattern;
  private final double maxTime;
  private final double maxAmount;
  private final double maxAbsFeature;
  private final long minEventTimeMs;
  private final long maxEventTimeAheadMs;
  private final String[] features;
  private final String[] optional; // id, source, event_time, label: their field names
  private final int timeIndex;
  private final int amountIndex;
  private final boolean[] bounded; // |x| <= maxAbsFeature (the PCA features)
  private transient Map<String, Integer> slots;
  private transient Pattern idRegex;
  private transient Pattern sourceRegex;
  private transient Pattern blank;
  private transient JsonFactory json;

  public FastMessage(String config) {
    Map<String, String> c = new HashMap<>();
    for (String line : config.split("\n")) {
      int eq = line.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("not key=value: " + line);
      }
      c.put(line.substring(0, eq), line.substring(eq + 1));
    }
    maxBytes = Integer.parseInt(required(c, "max_message_bytes"));
    maxIdLength = Integer.parseInt(required(c, "max_id_length"));
    maxSourceLength = Integer.parseInt(required(c, "max_source_length"));
    idPattern = required(c, "id_pattern");
    sourcePattern = required(c, "source_pattern");
    maxTime = Double.parseDouble(required(c, "max_time"));
    maxAmount = Double.parseDouble(required(c, "max_amount"));
    maxAbsFeature = Double.parseDouble(required(c, "max_abs_feature"));
    minEventTimeMs = Long.parseLong(required(c, "min_event_time_ms"));
    maxEventTimeAheadMs = Long.parseLong(required(c, "max_event_time_ahead_ms"));
    features = required(c, "features").split(",");
    optional = new String[] {
      required(c, "id_field"), required(c, "source_field"), required(c, "event_time_field"), required(c, "label_field")
    };
    timeIndex = Arrays.asList(features).indexOf(required(c, "time_feature"));
    amountIndex = Arrays.asList(features).indexOf(required(c, "amount_feature"));
    if (timeIndex < 0 || amountIndex < 0) {
      throw new IllegalArgumentException("time_feature and amount_feature must be among the features");
    }
    Set<String> pca = new HashSet<>(Arrays.asList(required(c, "bounded_features").split(",")));
    bounded = new boolean[features.length];
    for (int i = 0; i < features.length; i++) {
      bounded[i] = pca.contains(features[i]);
    }
    setUp();
  }

  private static String required(Map<String, String> c, String key) {
    String value = c.get(key);
    if (value == null) {
      throw new IllegalArgumentException("missing " + key);
    }
    return value;
  }

  private void setUp() {
    slots = new HashMap<>();
    for (int i = 0; i < features.length; i++) {
      slots.put(features[i], i);
    }
    for (int k = 0; k < optional.length; k++) {
      slots.put(optional[k], -1 - k);
    }
    idRegex = Pattern.compile("\\A(?:" + idPattern + ")\\z");
    sourceRegex = Pattern.compile("\\A(?:" + sourcePattern + ")\\z");
    blank = Pattern.compile("(?U)^\\s*$");
    json = new JsonFactory(); // strict JSON: no NaN tokens, comments, leading zeros or single quotes
  }

  private void readObject(java.io.ObjectInputStream in) throws IOException, ClassNotFoundException {
    in.defaultReadObject();
    setUp();
  }

  /**
   * (id, source, event_time, label, features...) of a message that passes every rule, read at
   * Kafka time {@code kafkaMs}; null where the rules must decide.
   */
  @Override
  public Row call(byte[] value, Long kafkaMs) {
    if (value == null || value.length == 0 || value.length > maxBytes || kafkaMs == null) {
      return null;
    }
    for (byte b : value) {
      if (b < 0 || b == '\\') {
        return null;
      }
    }
    try (JsonParser p = json.createParser(value)) {
      return read(p, kafkaMs);
    } catch (IOException e) {
      return null; // not the plain form (or not JSON): the rules decide
    }
  }

  private Row read(JsonParser p, long kafkaMs) throws IOException {
    if (p.nextToken() != JsonToken.START_OBJECT) {
      return null;
    }
    double[] x = new double[features.length];
    boolean[] seen = new boolean[features.length];
    Object[] fields = new Object[optional.length];
    boolean[] seenOptional = new boolean[optional.length];
    Set<String> others = null;
    int found = 0;
    JsonToken token;
    while ((token = p.nextToken()) == JsonToken.FIELD_NAME) {
      String name = p.currentName();
      JsonToken v = p.nextToken();
      Integer slot = slots.get(name);
      if (slot == null) {
        if (v == JsonToken.START_OBJECT || v == JsonToken.START_ARRAY) {
          return null;
        }
        if (others == null) {
          others = new HashSet<>();
        }
        if (!others.add(name)) {
          return null;
        }
      } else if (slot >= 0) {
        if (seen[slot] || (v != JsonToken.VALUE_NUMBER_INT && v != JsonToken.VALUE_NUMBER_FLOAT)) {
          return null;
        }
        double d = p.getDoubleValue();
        if (Double.isNaN(d) || Double.isInfinite(d)) {
          return null;
        }
        x[slot] = d;
        seen[slot] = true;
        found++;
      } else {
        int k = -1 - slot;
        if (seenOptional[k]) {
          return null;
        }
        seenOptional[k] = true;
        if (v == JsonToken.VALUE_NULL && k != ID) {
          continue;
        }
        if (k == ID || k == SOURCE) {
          if (v != JsonToken.VALUE_STRING) {
            return null;
          }
          fields[k] = p.getText();
        } else {
          if (v != JsonToken.VALUE_NUMBER_INT || p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
            return null;
          }
          fields[k] = p.getLongValue();
        }
      }
    }
    if (token != JsonToken.END_OBJECT || p.nextToken() != null || found != features.length) {
      return null;
    }
    return passes(x, fields, kafkaMs) ? row(x, fields) : null;
  }

  private boolean passes(double[] x, Object[] fields, long kafkaMs) {
    String id = (String) fields[ID];
    String source = (String) fields[SOURCE];
    if (id == null || id.length() > maxIdLength || blank.matcher(id).find() || !idRegex.matcher(id).matches()) {
      return false;
    }
    if (source != null && (source.length() > maxSourceLength || !sourceRegex.matcher(source).matches())) {
      return false;
    }
    Long label = (Long) fields[LABEL];
    if (label != null && label != 0L && label != 1L) {
      return false;
    }
    Long eventTime = (Long) fields[EVENT_TIME];
    if (eventTime != null && (eventTime < minEventTimeMs || eventTime > kafkaMs + maxEventTimeAheadMs)) {
      return false;
    }
    if (x[amountIndex] < 0 || x[amountIndex] > maxAmount || x[timeIndex] < 0 || x[timeIndex] > maxTime) {
      return false;
    }
    for (int i = 0; i < x.length; i++) {
      if (bounded[i] && Math.abs(x[i]) > maxAbsFeature) {
        return false;
      }
    }
    return true;
  }

  private static Row row(double[] x, Object[] fields) {
    Object[] out = new Object[4 + x.length];
    out[0] = fields[ID];
    out[1] = fields[SOURCE];
    out[2] = fields[EVENT_TIME];
    out[3] = fields[LABEL] == null ? null : ((Long) fields[LABEL]).intValue();
    for (int i = 0; i < x.length; i++) {
      out[4 + i] = x[i];
    }
    return RowFactory.create(out);
  }
}
